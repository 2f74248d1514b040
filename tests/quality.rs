//! The shipped models meet their quality bars, measured by `latent-lab eval` itself.

use std::process::Command;

fn eval(model: &str) -> serde_json::Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(model);
    let out = Command::new(env!("CARGO_BIN_EXE_latent-lab"))
        .args(["eval", path.to_str().unwrap(), "--json"])
        .output()
        .expect("run latent-lab eval");
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("eval --json prints one JSON object")
}

#[test]
fn shipped_sps_music_meets_the_bars() {
    let m = eval("sps_music.safetensors");
    let get = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("no {k} in {m}"));
    assert!(get("r2_embedding") >= BAR_EMBEDDING, "{m}");
    assert!(get("r2_embedding_unseen") >= BAR_UNSEEN, "{m}");
    assert!(get("r2_synthesis") >= BAR_SYNTHESIS, "{m}");
}

const BAR_EMBEDDING: f64 = 0.99;
const BAR_UNSEEN: f64 = 0.95;
const BAR_SYNTHESIS: f64 = 0.98;
