#!/usr/bin/env bash
# Builds the WebAssembly package: the npm package in pkg/ (package.json, JS glue, .d.ts, .wasm)
# and the demo page's copies of it, of the demo model and of sample images under web/.
#
# Needs a Rust compiler that can build for wasm32-unknown-unknown, which is either
#   - rustup with the target installed (`rustup target add wasm32-unknown-unknown`), or
#   - Debian's rustc-web, cargo-web, rust-web-src and lld packages (Debian 12: Rust 1.96),
#     whose standard library is compiled from source here with -Zbuild-std.
# wasm-bindgen-cli must match the wasm-bindgen version in Cargo.lock; if it is not on PATH at
# that version, it is installed from crates.io into target/wasm-tools.
#
# Environment: RUSTC (compiler to use), WASM_PROFILE (cargo profile, default release), WASM_OPT
# (a binaryen wasm-opt to run on the output; none by default).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
profile=${WASM_PROFILE:-release}
target_dir="$root/target/wasm"

# Pick the compiler: rustup's if it has the wasm32 standard library, else Debian's rustc-web.
rustc_bin=${RUSTC:-$(command -v rustc || true)}
build_std=()
if [ -n "$rustc_bin" ] && [ -d "$("$rustc_bin" --print sysroot)/lib/rustlib/wasm32-unknown-unknown" ]; then
  cargo_bin=$(command -v cargo)
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  # Debian's packages ship the standard library's source but no wasm32 build of it.
  rustc_bin=/usr/bin/rustc
  cargo_bin=/usr/bin/cargo
  build_std=(-Zbuild-std=std,panic_abort)
  export RUSTC_BOOTSTRAP=1
else
  echo "error: no Rust compiler for wasm32-unknown-unknown found. Install one of:" >&2
  echo "  rustup target add wasm32-unknown-unknown" >&2
  echo "  apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22" >&2
  exit 1
fi
export RUSTC="$rustc_bin"
echo "Compiling for wasm32 with $("$rustc_bin" --version)"

# The crate is built as a cdylib only here, so native builds do not link one.
"$cargo_bin" rustc --lib --profile "$profile" --crate-type cdylib --no-default-features \
  --target wasm32-unknown-unknown --target-dir "$target_dir" "${build_std[@]}"
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
wasm="$target_dir/wasm32-unknown-unknown/$profile_dir/coca_wgpu.wasm"

# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
bindgen=$(command -v wasm-bindgen || true)
if [ -z "$bindgen" ] || [ "$("$bindgen" --version)" != "wasm-bindgen $bindgen_version" ]; then
  bindgen="$root/target/wasm-tools/bin/wasm-bindgen"
  if [ ! -x "$bindgen" ] || [ "$("$bindgen" --version)" != "wasm-bindgen $bindgen_version" ]; then
    echo "Installing wasm-bindgen-cli $bindgen_version into target/wasm-tools"
    # Installed from outside the project, so that its .cargo/config.toml does not apply, and
    # with the default toolchain (rustup's where present): on a 2-core Debian 12 machine this
    # install took 1.2 CPU minutes with rustup's Rust 1.95 and 2.4 with Debian's rustc-web. The
    # debug build compiles in a fraction of the release build's time and still runs in seconds.
    (cd "${TMPDIR:-/tmp}" && env -u RUSTC -u RUSTC_BOOTSTRAP cargo install wasm-bindgen-cli \
      --version "=$bindgen_version" --no-default-features --bin wasm-bindgen --debug \
      --root "$root/target/wasm-tools" --target-dir "$root/target/wasm-tools/build")
  fi
fi

rm -rf pkg
"$bindgen" --target web --out-dir pkg --out-name coca_wgpu "$wasm"

# Optional: shrink the module with binaryen's wasm-opt, e.g. WASM_OPT=node_modules/.bin/wasm-opt
# from the npm package `binaryen`; Debian 12's binaryen 108 is reported to corrupt this module.
if [ -n "${WASM_OPT:-}" ]; then
  "$WASM_OPT" -Os --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    pkg/coca_wgpu_bg.wasm -o pkg/coca_wgpu_bg.wasm
fi

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
cat > pkg/package.json <<EOF
{
  "name": "coca-wgpu",
  "version": "$version",
  "description": "CoCa (Contrastive Captioner, open_clip) on WebGPU: image captions, embeddings and zero-shot labels in the browser and Node.",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "coca_wgpu.js",
  "types": "coca_wgpu.d.ts",
  "exports": {
    ".": { "types": "./coca_wgpu.d.ts", "default": "./coca_wgpu.js" },
    "./coca_wgpu_bg.wasm": "./coca_wgpu_bg.wasm"
  },
  "files": ["coca_wgpu.js", "coca_wgpu.d.ts", "coca_wgpu_bg.wasm", "coca_wgpu_bg.wasm.d.ts", "README.md"],
  "sideEffects": false
}
EOF
cp scripts/npm/README.md pkg/README.md

# The demo page serves everything from web/, so it gets its own copies.
rm -rf web/pkg web/models web/samples
mkdir -p web/models web/samples
cp -r pkg web/pkg
cp -r models/demo web/models/demo
cp examples/images/shapes-*.png web/samples/

raw=$(wc -c < pkg/coca_wgpu_bg.wasm)
gzipped=$(gzip -9 -c pkg/coca_wgpu_bg.wasm | wc -c)
echo "pkg/coca_wgpu_bg.wasm: $raw bytes, $gzipped bytes gzipped (gzip -9)"
