//! Asynchronous readback of GPU buffers. On native targets the device is polled until the copy
//! has landed; on the web the browser's event loop completes the mapping.

use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use crate::error::{Error, Result};

#[derive(Default)]
struct MapState {
    result: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// Maps `buffer` (which must have MAP_READ usage and a completed submission writing it) and
/// returns a copy of its first `bytes` bytes.
pub(crate) async fn read_buffer(device: &wgpu::Device, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let state = Arc::new(Mutex::new(MapState::default()));
    let callback_state = state.clone();
    buffer.slice(..bytes).map_async(wgpu::MapMode::Read, move |result| {
        let mut state = callback_state.lock().unwrap_or_else(|e| e.into_inner());
        state.result = Some(result);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    });

    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;

    std::future::poll_fn(|cx| {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
    .map_err(|e| Error::Gpu(format!("reading results back from the GPU failed: {e}")))?;

    let data = buffer
        .slice(..bytes)
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("mapping a readback buffer failed: {e:?}")))?
        .to_vec();
    buffer.unmap();
    Ok(data)
}
