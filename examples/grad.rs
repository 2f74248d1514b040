use candle_core::{Device, Tensor, Module};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use latent_lab::sps_music::{data::*, model::SpsMusic, train::TrainConfig};
fn main() -> anyhow::Result<()> {
    let lr: f64 = std::env::args().nth(1).unwrap().parse()?;
    let mut cfg = TrainConfig::preset("fast")?;

    let (vm, vb) = latent_lab::nn::new_varmap();
    let m = SpsMusic::new(&cfg.model, vb)?;
    let mut src = open_source("soundfont")?;
    let mut stft = latent_lab::audio::dsp::Stft::new();
    let mut feats = Vec::new();
    let mut pitches = Vec::new();
    for (inst, start) in [(0, 50), (1, 55), (4, 60), (5, 48), (6, 66), (7, 70), (2, 52), (3, 62)] {
        feats.extend(scale_features(&mut stft, &render_scale(src.as_mut(), inst, start)?));
        pitches.extend(SCALE.iter().map(|s| (start + s) as f64));
    }
    let n = feats.len() / NOTE_FEATURES;
    let x = Tensor::from_vec(feats, (n, 1, 513, 5), &Device::Cpu)?;
    let mean = x.mean_all()?;
    let xm = x.broadcast_sub(&x.mean(0)?.unsqueeze(0)?)?;
    println!("n {n} mean {} var-around-binmean {}", mean, xm.sqr()?.mean_all()?);
    let mut opt = AdamW::new(vm.all_vars(), ParamsAdamW { lr, weight_decay: 0.0, ..Default::default() })?;
    for step in 0..=600 {
        let (mu, _) = m.encode(&x)?;
        let kl = latent_lab::nn::kl_sum(&mu, &mu.zeros_like()?)?;
        let logits = m.decode_logits(&mu)?;
        let loss = (latent_lab::nn::bce_with_logits_sum(&logits, &x)? + (kl * 0.01)?)?;
        opt.backward_step(&loss)?;
        if step % 100 == 0 {
            let y = candle_nn::ops::sigmoid(&logits)?;
            let mse = (&y - &x)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
            let mustd = mu.var(0)?.to_vec1::<f32>()?;
            let mus = mu.to_vec2::<f32>()?;
            let r2: Vec<f64> = (0..3).map(|d| latent_lab::metrics::linear_fit(&mus.iter().map(|m| m[d] as f64).collect::<Vec<_>>(), &pitches).r2).collect();
            println!("r2 per dim {r2:.3?}");
            println!("step {step} loss/note {:.1} mse {mse:.5} mu var {:?}", loss.to_scalar::<f32>()? / n as f32, mustd);
        }
    }
    Ok(())
}
