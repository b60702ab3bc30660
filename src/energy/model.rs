//! The formula of the energy model: the energy of one MAC and of one memory access at a given
//! precision, and the per-layer terms E_C, E_W and E_A (see the module doc of `energy`).

use super::report::{EnergyReport, EnergyTotals, LayerEnergy};
use super::{LayerWork, Profile};

/// E_MAC(Qw, Qa): one multiply-accumulate of a `wbits` weight by an `abits` activation.
pub fn mac_energy(profile: &Profile, wbits: u32, abits: u32) -> f64 {
    let relative_product = f64::from(wbits) * f64::from(abits) / 256.0;
    profile.e_mac16 * relative_product.powf(profile.beta / 2.0)
}

/// E_M(Q): writing or reading one `bits`-bit word of the main memory.
pub fn main_memory_energy(profile: &Profile, bits: u32) -> f64 {
    profile.e_main16 * f64::from(bits) / 16.0
}

/// E_L(Q): reading one `bits`-bit word of the local memory.
pub fn local_memory_energy(profile: &Profile, bits: u32) -> f64 {
    profile.e_local16 * f64::from(bits) / 16.0
}

/// The energy of one layer's work on `profile`; `share` is left at 0 for [`estimate`] to fill.
pub fn layer_energy(work: &LayerWork, profile: &Profile) -> LayerEnergy {
    let macs = work.macs as f64;
    // Each word read from local memory feeds sqrt(p) of the p parallel MAC units.
    let local_reads = macs / f64::from(profile.parallel_macs).sqrt();
    let e_mac = mac_energy(profile, work.wbits, work.abits_in);
    // Batch norm, activation and pooling cost about three MACs per computed output.
    let e_c = e_mac * (macs + 3.0 * work.outputs_computed as f64);
    let e_w = main_memory_energy(profile, work.wbits) * work.weights as f64
        + local_memory_energy(profile, work.wbits) * local_reads;
    let e_a = 2.0 * main_memory_energy(profile, work.abits_out) * work.outputs_stored as f64
        + local_memory_energy(profile, work.abits_in) * local_reads;
    LayerEnergy {
        name: work.name.clone(),
        op: work.op.clone(),
        macs: work.macs,
        weights: work.weights,
        outputs_computed: work.outputs_computed,
        outputs_stored: work.outputs_stored,
        wbits: work.wbits,
        abits: work.abits_out,
        abits_in: work.abits_in,
        e_mac,
        e_c,
        e_w,
        e_a,
        e_layer: e_c + e_w + e_a,
        share: 0.0,
    }
}

/// The energy of one inference, layer by layer, with the totals.
pub fn estimate(work: &[LayerWork], profile: &Profile) -> EnergyReport {
    let mut layers: Vec<LayerEnergy> = work.iter().map(|w| layer_energy(w, profile)).collect();
    let totals = EnergyTotals {
        e_c: layers.iter().map(|l| l.e_c).sum(),
        e_w: layers.iter().map(|l| l.e_w).sum(),
        e_a: layers.iter().map(|l| l.e_a).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        weights: layers.iter().map(|l| l.weights).sum(),
    };
    let total = totals.e_c + totals.e_w + totals.e_a;
    if total > 0.0 {
        for layer in &mut layers {
            layer.share = layer.e_layer / total;
        }
    }
    EnergyReport {
        profile: profile.name.clone(),
        units: profile.units.clone(),
        total,
        totals,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(beta: f64) -> Profile {
        Profile {
            name: "t".into(),
            description: String::new(),
            units: "u".into(),
            e_mac16: 2.0,
            beta,
            e_local16: 3.0,
            e_main16: 50.0,
            parallel_macs: 16,
        }
    }

    #[test]
    fn one_precision_everywhere_gives_the_papers_mac_energy() {
        let p = profile(1.25);
        for q in 1..=16 {
            let paper = p.e_mac16 * (f64::from(q) / 16.0).powf(p.beta);
            assert!((mac_energy(&p, q, q) - paper).abs() < 1e-12 * paper);
        }
        assert_eq!(mac_energy(&p, 16, 16), p.e_mac16);
    }

    #[test]
    fn memory_energy_is_linear_in_the_bits() {
        let p = profile(1.25);
        assert_eq!(main_memory_energy(&p, 16), 50.0);
        assert_eq!(main_memory_energy(&p, 4), 12.5);
        assert_eq!(local_memory_energy(&p, 8), 1.5);
    }

    #[test]
    fn shares_add_up_to_one_and_totals_to_the_layers() {
        let work = [
            LayerWork {
                name: "a".into(),
                op: "dense".into(),
                macs: 100,
                weights: 100,
                outputs_computed: 10,
                outputs_stored: 10,
                wbits: 4,
                abits_in: 8,
                abits_out: 4,
            },
            LayerWork {
                name: "b".into(),
                op: "dense".into(),
                macs: 30,
                weights: 30,
                outputs_computed: 3,
                outputs_stored: 3,
                wbits: 4,
                abits_in: 4,
                abits_out: 16,
            },
        ];
        let report = estimate(&work, &profile(1.0));
        let shares: f64 = report.layers.iter().map(|l| l.share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
        let layers: f64 = report.layers.iter().map(|l| l.e_layer).sum();
        assert!((layers - report.total).abs() < 1e-9 * report.total);
        assert_eq!((report.totals.macs, report.totals.weights), (130, 130));
    }
}
