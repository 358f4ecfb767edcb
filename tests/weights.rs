//! Safetensors reading: f32, f16 and bf16 tensors all widen to the same f32 values.

use coca_wgpu::model::weights::HostWeights;
use safetensors::tensor::TensorView;
use safetensors::Dtype;

#[test]
fn f32_f16_and_bf16_tensors_decode_to_the_same_values() {
    // Values exactly representable in bf16 (8 significant bits), so every dtype stores them exactly.
    let values: Vec<f32> = vec![1.0, -2.5, 0.15625, 384.0, -0.0078125, 0.0];
    let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let f16_bytes: Vec<u8> = values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
    let bf16_bytes: Vec<u8> = values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect();
    let tensors = vec![
        ("a.f32", TensorView::new(Dtype::F32, vec![2, 3], &f32_bytes).unwrap()),
        ("a.f16", TensorView::new(Dtype::F16, vec![2, 3], &f16_bytes).unwrap()),
        ("a.bf16", TensorView::new(Dtype::BF16, vec![2, 3], &bf16_bytes).unwrap()),
    ];
    let bytes = safetensors::serialize(tensors, None).unwrap();
    let weights = HostWeights::from_safetensors(&bytes, "mixed.safetensors").unwrap();
    for name in ["a.f32", "a.f16", "a.bf16"] {
        let tensor = weights.get(name).unwrap();
        assert_eq!(tensor.shape, vec![2, 3], "{name} shape");
        assert_eq!(tensor.data, values, "{name} values");
    }
}

#[test]
fn unsupported_dtype_is_named() {
    let ints: Vec<u8> = [1i32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = safetensors::serialize(vec![("ids", TensorView::new(Dtype::I32, vec![3], &ints).unwrap())], None).unwrap();
    let message = HostWeights::from_safetensors(&bytes, "ids.safetensors").err().expect("I32 is not a weight dtype").to_string();
    assert!(message.contains("`ids` has dtype I32"), "{message}");
}
