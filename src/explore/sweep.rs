//! The sweep: a grid of precision x width x depth over network families, each point trained,
//! evaluated (float-QAT and integer golden model) and priced under every energy profile.
//! Points are cached under a digest of everything that determines them, so a sweep resumes
//! where it stopped, and can be split into shards that run anywhere and are collected later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::point::{LayerEnergy, PointResult};
use crate::codegen::digest;
use crate::data::Dataset;
use crate::energy::{self, Profile};
use crate::error::{Error, Result};
use crate::golden::Golden;
use crate::ir::passes;
use crate::model::{Model, TrainingRecord};
use crate::spec::{Network, Overrides, Precision, Spec};
use crate::train::{self, Net, TrainOptions};

/// A sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    #[serde(default = "one")]
    pub seed: u64,
    /// Test accuracies (percent) the report answers for.
    pub targets: Vec<f64>,
    /// Energy profiles: presets or TOML files (relative to the sweep file).
    pub profiles: Vec<String>,
    #[serde(default)]
    pub train_limit: Option<usize>,
    #[serde(default)]
    pub test_limit: Option<usize>,
    #[serde(default = "hundred")]
    pub batch: usize,
    #[serde(default = "learning_rate")]
    pub learning_rate: f32,
    #[serde(default)]
    pub cnn: Option<Family>,
    #[serde(default)]
    pub mlp: Option<Family>,
}

fn one() -> u64 {
    1
}
fn hundred() -> usize {
    100
}
fn learning_rate() -> f32 {
    2e-3
}

/// One network family and its grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    /// Spec of the family (relative to the sweep file): a `blocks` template for `cnn`, an
    /// `mlp` template for `mlp`.
    pub spec: PathBuf,
    pub bits: Vec<u8>,
    /// Filters per block (cnn) or hidden units (mlp).
    pub widths: Vec<usize>,
    /// Conv layers per block (cnn) or hidden layers (mlp).
    pub depths: Vec<usize>,
    pub epochs: usize,
}

/// One point to compute.
#[derive(Debug, Clone)]
pub struct PointSpec {
    pub id: String,
    pub family: String,
    pub bits: u32,
    pub width: usize,
    pub depth: usize,
    pub network: Network,
    pub epochs: usize,
    /// Digest of everything that determines the result.
    pub key: String,
}

impl Sweep {
    pub fn load(path: &Path) -> Result<Sweep> {
        let file = path.display().to_string();
        let text = crate::input::read_config(path).map_err(|e| Error::Output {
            file: file.clone(),
            message: e.to_string(),
        })?;
        let de = toml::Deserializer::parse(&text)
            .map_err(|e| Error::usage(&file, e.message().replace('\n', " ")))?;
        let sweep: Sweep = serde_path_to_error::deserialize(de).map_err(|e| {
            Error::usage(
                &format!("{file}: {}", e.path()),
                e.into_inner().message().replace('\n', " "),
            )
        })?;
        Ok(sweep)
    }

    /// A digest of the sweep: shards of the same sweep agree on it.
    pub fn digest(&self) -> String {
        digest(serde_json::to_string(self).expect("sweep serialises"))
    }

    /// Every point of the grid, in a fixed order (family, precision, depth, width).
    pub fn points(&self, sweep_file: &Path) -> Result<Vec<PointSpec>> {
        let file = sweep_file.display().to_string();
        let field = |name: &str| format!("{file}: {name}");
        if self.batch == 0 {
            return Err(Error::usage(&field("batch"), "must be at least 1"));
        }
        crate::limits::at_most(self.batch, crate::limits::MAX_BATCH)
            .map_err(|message| Error::usage(&field("batch"), message))?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::usage(
                &field("learning_rate"),
                "must be a positive number",
            ));
        }
        if self.profiles.is_empty() {
            return Err(Error::usage(
                &field("profiles"),
                "give at least one energy profile",
            ));
        }
        let folder = sweep_file.parent().unwrap_or(Path::new("."));
        let mut points = Vec::new();
        for (family_name, family) in [("cnn", &self.cnn), ("mlp", &self.mlp)] {
            let Some(family) = family else { continue };
            let spec_path = folder.join(&family.spec);
            let spec_origin = spec_path.display().to_string();
            if !spec_path.is_file() {
                return Err(Error::usage(
                    &format!("{file}: {family_name}.spec"),
                    format!(
                        "{} is not a file (spec paths are relative to the sweep file)",
                        spec_path.display()
                    ),
                ));
            }
            let base = Spec::from_file(&spec_path)?;
            if family.epochs == 0 {
                return Err(Error::usage(
                    &format!("{file}: {family_name}.epochs"),
                    "must be at least 1",
                ));
            }
            crate::limits::at_most(family.epochs, crate::limits::MAX_EPOCHS).map_err(
                |message| Error::usage(&format!("{file}: {family_name}.epochs"), message),
            )?;
            if let Some(&width) = family
                .widths
                .iter()
                .find(|&&w| w > crate::limits::MAX_WIDTH)
            {
                return Err(Error::usage(
                    &format!("{file}: {family_name}.widths"),
                    crate::limits::at_most(width, crate::limits::MAX_WIDTH).unwrap_err(),
                ));
            }
            // A depth is a count of layers to make: refuse a huge one before making them.
            if let Some(&depth) = family
                .depths
                .iter()
                .find(|&&d| d > crate::limits::MAX_LAYERS)
            {
                return Err(Error::usage(
                    &format!("{file}: {family_name}.depths"),
                    crate::limits::at_most(depth, crate::limits::MAX_LAYERS).unwrap_err(),
                ));
            }
            for &bits in &family.bits {
                let precision = Precision::from_bits(bits as i64)
                    .map_err(|m| Error::usage(&format!("{file}: {family_name}.bits"), m))?;
                for &depth in &family.depths {
                    for &width in &family.widths {
                        let overrides = match family_name {
                            "cnn" => Overrides {
                                bits: Some(precision),
                                nl: Some(vec![depth]),
                                nf: Some(vec![width]),
                                ..Overrides::default()
                            },
                            _ => Overrides {
                                bits: Some(precision),
                                hidden: Some(vec![width; depth]),
                                ..Overrides::default()
                            },
                        };
                        let mut spec = base.clone();
                        spec.apply(&overrides, &spec_origin)?;
                        let network = spec.build(&spec_origin)?;
                        let memory = crate::train::memory::peak_bytes(&network, self.batch, None);
                        if memory.is_none_or(|bytes| {
                            bytes > crate::train::memory::machine_memory_bytes()
                        }) {
                            return Err(Error::usage(
                                &field(family_name),
                                format!("width {width} and depth {depth} need more memory than this machine has"),
                            ));
                        }
                        let (w, d) = if family_name == "cnn" {
                            ("nf", "nl")
                        } else {
                            ("w", "d")
                        };
                        let id = format!("{family_name}-q{bits}-{d}{depth}-{w}{width}");
                        let key = digest(format!(
                            "{}\n{}\n{}\n{:?}\n{:?}\n{}\n{}\n{}",
                            env!("CARGO_PKG_VERSION"),
                            serde_json::to_string(&network.spec).expect("spec serialises"),
                            family.epochs,
                            self.train_limit,
                            self.test_limit,
                            self.batch,
                            self.learning_rate,
                            self.seed
                        ));
                        points.push(PointSpec {
                            id,
                            family: family_name.into(),
                            bits: bits as u32,
                            width,
                            depth,
                            network,
                            epochs: family.epochs,
                            key,
                        });
                    }
                }
            }
        }
        if let Some(other) = points
            .iter()
            .find(|p| p.network.spec.dataset != points[0].network.spec.dataset)
        {
            return Err(Error::usage(
                &file,
                format!(
                    "{} uses {} but {} uses {}: a sweep trains on one data set",
                    other.id,
                    other.network.spec.dataset.name(),
                    points[0].id,
                    points[0].network.spec.dataset.name()
                ),
            ));
        }
        if points.is_empty() {
            return Err(Error::usage(
                &file,
                "the grid is empty: give a cnn or mlp family with bits, widths and depths",
            ));
        }
        Ok(points)
    }

    /// The profiles: presets, or files relative to `folder` (the sweep file's folder, or the
    /// working folder for profiles given on the command line).
    pub fn resolve_profiles(&self, folder: &Path) -> Result<Vec<Profile>> {
        self.profiles
            .iter()
            .map(|name| {
                if Profile::preset(name).is_some() {
                    Ok(Profile::resolve(name)?)
                } else {
                    Ok(Profile::resolve(&folder.join(name).display().to_string())?)
                }
            })
            .collect()
    }
}

/// Trains, evaluates and prices one point; the trained model is returned for the cache.
pub fn compute_point(
    point: &PointSpec,
    sweep: &Sweep,
    train_data: &Dataset,
    test_data: &Dataset,
    profiles: &[Profile],
) -> Result<(PointResult, Model)> {
    let options = TrainOptions {
        epochs: point.epochs,
        batch: sweep.batch,
        learning_rate: sweep.learning_rate,
        seed: sweep.seed,
    };
    let mut net = Net::new(&point.network, sweep.seed);
    let history = train::train(
        &mut net,
        train_data,
        &options,
        &indicatif::ProgressBar::hidden(),
    );
    let float = train::evaluate(&mut net, test_data, sweep.batch);
    let mut graph = net.to_graph(&point.id)?;
    passes::run(&mut graph, &point.id, None)?;
    let (integer, _) =
        Golden::new(&graph, &point.id)?.accuracy(&test_data.images, &test_data.labels);
    let (energies, units, layers) = price(point, sweep, profiles);
    let weights: u64 = point.network.layers.iter().map(|l| l.weights()).sum();
    let model_bits = point
        .network
        .layers
        .iter()
        .map(|l| l.weights() * l.op.weight_precision().and_then(|p| p.bits()).unwrap_or(32) as u64)
        .sum();
    let result = PointResult {
        id: point.id.clone(),
        family: point.family.clone(),
        bits: point.bits,
        width: point.width,
        depth: point.depth,
        float_accuracy: float.accuracy,
        integer_accuracy: integer,
        energy: energies,
        units,
        layers,
        weights,
        macs: point.network.layers.iter().map(|l| l.macs()).sum(),
        model_bits,
    };
    let model = Model {
        net,
        training: TrainingRecord {
            dataset: point.network.spec.dataset.name().into(),
            train_images: train_data.len(),
            test_images: test_data.len(),
            options,
            history,
            test_accuracy: float.accuracy,
        },
    };
    Ok((result, model))
}

/// Energy of one inference of a point under every profile of the sweep, keyed by the names the
/// sweep gives them. Cheap, so cached points are priced again: profiles may change between runs
/// without invalidating any training.
pub fn price(point: &PointSpec, sweep: &Sweep, profiles: &[Profile]) -> Prices {
    let work = energy::work_of(&point.network);
    let (mut energies, mut units, mut layers) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for (key, profile) in sweep.profiles.iter().zip(profiles) {
        let report = energy::estimate(&work, profile);
        energies.insert(key.clone(), report.total);
        units.insert(key.clone(), report.units.clone());
        layers.insert(
            key.clone(),
            report
                .layers
                .iter()
                .map(|l| LayerEnergy {
                    name: l.name.clone(),
                    e_c: l.e_c,
                    e_w: l.e_w,
                    e_a: l.e_a,
                })
                .collect(),
        );
    }
    (energies, units, layers)
}

/// Energies, units and per-layer energies, each by profile name.
pub type Prices = (
    BTreeMap<String, f64>,
    BTreeMap<String, String>,
    BTreeMap<String, Vec<LayerEnergy>>,
);

/// The cache of computed points: `<dir>/<key>.json` and the trained model `<dir>/<key>.qnn`.
pub struct Cache {
    pub dir: PathBuf,
}

/// What reading a cache entry found.
pub enum Cached {
    Hit(PointResult),
    Miss,
    /// An entry that exists but does not parse or is for another point.
    Corrupt(String),
}

impl Cache {
    pub fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub fn model(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.qnn"))
    }

    pub fn read(&self, point: &PointSpec) -> Cached {
        let path = self.entry(&point.key);
        let Ok(text) = crate::input::read_text(&path, crate::input::BUILD_FILE) else {
            return Cached::Miss;
        };
        match serde_json::from_str::<PointResult>(&text) {
            Ok(result) if result.id == point.id && self.model(&point.key).is_file() => {
                Cached::Hit(result)
            }
            Ok(_) => Cached::Corrupt(format!(
                "{}: entry is for another point or lacks its model",
                path.display()
            )),
            Err(e) => Cached::Corrupt(format!("{}: {e}", path.display())),
        }
    }

    pub fn write(&self, point: &PointSpec, result: &PointResult, model: &mut Model) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::Output {
            file: self.dir.display().to_string(),
            message: e.to_string(),
        })?;
        model.save(&self.model(&point.key))?;
        let text = serde_json::to_string_pretty(result).expect("point serialises") + "\n";
        crate::output::write_atomic(&self.entry(&point.key), text.as_bytes()).map_err(|e| {
            Error::Output {
                file: self.entry(&point.key).display().to_string(),
                message: e.to_string(),
            }
        })
    }
}

/// `<cache>/sweep.fingerprint` (JSON): which sweep a cache folder belongs to.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheOwner {
    format: String,
    sweep: String,
    sweep_sha256: String,
}

const CACHE_OWNER_FORMAT: &str = "qnnc-explore-cache";

impl Cache {
    pub fn owner_file(&self) -> PathBuf {
        self.dir.join("sweep.fingerprint")
    }

    /// Refuses a cache folder that another sweep (another name) wrote; whether the fingerprint
    /// is the sweep's as it is now. The same sweep, edited, keeps its cache: points are keyed
    /// by everything that determines them, so only changed points are computed again.
    pub fn check_owner(&self, sweep: &Sweep) -> Result<bool> {
        let path = self.owner_file();
        let file = path.display().to_string();
        let Ok(text) = crate::input::read_text(&path, crate::input::BUILD_FILE) else {
            return Ok(false);
        };
        let owner: CacheOwner = serde_json::from_str(&text)
            .ok()
            .filter(|o: &CacheOwner| o.format == CACHE_OWNER_FORMAT)
            .ok_or_else(|| {
                Error::usage(&file, "not a qnnc sweep cache: give another cache folder")
            })?;
        if owner.sweep != sweep.name {
            return Err(Error::usage(
                &file,
                format!(
                    "this cache folder holds the points of sweep '{}', not of '{}': give another output folder (-o) or --cache",
                    owner.sweep, sweep.name
                ),
            ));
        }
        Ok(owner.sweep_sha256 == sweep.digest())
    }

    /// Marks the cache folder as the sweep's (see [`Cache::check_owner`]), once the sweep is
    /// about to write into it.
    pub fn claim(&self, sweep: &Sweep) -> Result<()> {
        if self.check_owner(sweep)? {
            return Ok(());
        }
        let file = self.owner_file().display().to_string();
        let owner = CacheOwner {
            format: CACHE_OWNER_FORMAT.into(),
            sweep: sweep.name.clone(),
            sweep_sha256: sweep.digest(),
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::Output {
            file: self.dir.display().to_string(),
            message: e.to_string(),
        })?;
        let text = serde_json::to_string_pretty(&owner).expect("owner serialises") + "\n";
        crate::output::write_atomic(&self.owner_file(), text.as_bytes()).map_err(|e| {
            Error::Output {
                file,
                message: e.to_string(),
            }
        })
    }
}
