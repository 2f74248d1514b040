use candle_core::{Device, Tensor, Var};
use latent_lab::sps_music::{model::SpsMusic, train::TrainConfig};
fn main() -> anyhow::Result<()> {
    let mut cfg = TrainConfig::preset("fast")?;
    cfg.model.channels = [4, 4, 8, 8];
    cfg.model.mlp = [4, 8, 8, 16];
    let (vm, vb) = latent_lab::nn::new_varmap();
    let m = SpsMusic::new(&cfg.model, vb)?;
    let x = Tensor::rand(0f32, 1., (3, 1, 513, 5), &Device::Cpu)?.to_dtype(candle_core::DType::F64)?;
    // do everything in f64 for clean finite differences
    let x = x.to_dtype(candle_core::DType::F32)?;
    let f = |m: &SpsMusic| -> anyhow::Result<f64> {
        let (mu, _) = m.encode(&x)?;
        let y = m.decode_logits(&mu)?;
        Ok(latent_lab::nn::bce_with_logits_sum(&y, &x)?.to_scalar::<f32>()? as f64)
    };
    let (mu, _) = m.encode(&x)?;
    let loss = latent_lab::nn::bce_with_logits_sum(&m.decode_logits(&mu)?, &x)?;
    let grads = loss.backward()?;
    let data = vm.data().lock().unwrap();
    let mut names: Vec<_> = data.keys().cloned().filter(|n| n.starts_with("enc") || n.starts_with("dec") || n.starts_with("fc3") || n.starts_with("fc11")).collect();
    names.sort();
    for n in names {
        let v: &Var = &data[&n];
        let g = grads.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1::<f32>()?;
        let w = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let idx = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
        let eps = 3e-2f32;
        let mut wp = w.clone(); wp[idx] += eps;
        v.set(&Tensor::from_vec(wp, v.dims(), &Device::Cpu)?)?;
        let lp = f(&m)?;
        let mut wm = w.clone(); wm[idx] -= eps;
        v.set(&Tensor::from_vec(wm, v.dims(), &Device::Cpu)?)?;
        let lm = f(&m)?;
        v.set(&Tensor::from_vec(w, v.dims(), &Device::Cpu)?)?;
        println!("{n:20} idx {idx:5} autograd {:12.5} numeric {:12.5}", g[idx], (lp - lm) / (2.0 * eps as f64));
    }
    Ok(())
}
