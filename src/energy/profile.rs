//! Hardware profiles: the constants of the energy model for one platform, read from TOML and
//! validated. The presets live in examples/profiles/ and are compiled in, so that they work from
//! any folder; a user's own profile is a TOML file with the same fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EnergyError;
use crate::limits::{MAX_PROFILE_BETA, MAX_PROFILE_ENERGY};

/// The constants of the energy model of one platform. Every energy is in `units`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name shown in reports.
    pub name: String,
    /// Where the numbers come from.
    pub description: String,
    /// Unit of every energy, e.g. "pJ" or "16-bit MAC".
    pub units: String,
    /// Energy of one multiply-accumulate of a 16-bit weight by a 16-bit activation.
    pub e_mac16: f64,
    /// How the MAC energy grows with the bits: E_MAC ~ (Qw*Qa)^(beta/2).
    pub beta: f64,
    /// Energy of reading 16 bits from the local memory beside the MAC units.
    pub e_local16: f64,
    /// Energy of writing or reading 16 bits of the main memory.
    pub e_main16: f64,
    /// p: MAC units working in parallel; a word read from local memory serves sqrt(p) of them.
    pub parallel_macs: u32,
}

/// The presets: name and TOML text.
const PRESETS: [(&str, &str); 3] = [
    (
        "moons-dram",
        include_str!("../../examples/profiles/moons-dram.toml"),
    ),
    (
        "moons-sram",
        include_str!("../../examples/profiles/moons-sram.toml"),
    ),
    (
        "horowitz45-pj",
        include_str!("../../examples/profiles/horowitz45-pj.toml"),
    ),
];

/// The profile a command uses when none is given.
pub const DEFAULT_PROFILE: &str = "moons-dram";

impl Profile {
    /// Names of the presets, in the order they are listed to a user.
    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|(name, _)| *name).collect()
    }

    /// A preset by name, or `None` if there is no preset of that name.
    pub fn preset(name: &str) -> Option<Result<Profile, EnergyError>> {
        PRESETS
            .iter()
            .find(|(preset, _)| *preset == name)
            .map(|(preset, text)| Profile::parse(text, &format!("examples/profiles/{preset}.toml")))
    }

    /// A preset if `name_or_path` names one, else the profile in the TOML file at that path.
    pub fn resolve(name_or_path: &str) -> Result<Profile, EnergyError> {
        if let Some(preset) = Profile::preset(name_or_path) {
            return preset;
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return Profile::from_file(path);
        }
        Err(EnergyError::UnknownProfile {
            name: name_or_path.to_string(),
            presets: Profile::preset_names(),
        })
    }

    /// Reads and validates the profile in a TOML file.
    pub fn from_file(path: &Path) -> Result<Profile, EnergyError> {
        let file = path.display().to_string();
        let text = crate::input::read_config(path).map_err(|e| EnergyError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Profile::parse(&text, &file)
    }

    /// Parses and validates profile TOML; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, EnergyError> {
        let error = |field: &str, message: &str| EnergyError::Syntax {
            file: origin.to_string(),
            field: field.to_string(),
            message: one_line(message),
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let place = line
                .map(|line| format!("line {line}: "))
                .unwrap_or_default();
            error("(top level)", &format!("{place}{}", e.message()))
        })?;
        let profile: Profile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().message().to_string();
            // A missing constant is reported at the top level; name it as the field instead.
            match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                Some(missing) => EnergyError::Missing {
                    file: origin.to_string(),
                    field: missing.to_string(),
                },
                None if path.is_empty() || path == "." => error("(top level)", &message),
                None => error(&path, &message),
            }
        })?;
        profile.validate(origin)?;
        Ok(profile)
    }

    /// Checks that every constant is usable: energies and beta finite, positive and within the
    /// limits that keep every energy of a network finite (`crate::limits`), p >= 1.
    pub fn validate(&self, origin: &str) -> Result<(), EnergyError> {
        let error = |field: &str, message: String| EnergyError::Profile {
            file: origin.to_string(),
            field: field.to_string(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(error("name", "must not be empty".into()));
        }
        for (field, value, max) in [
            ("e_mac16", self.e_mac16, MAX_PROFILE_ENERGY),
            ("beta", self.beta, MAX_PROFILE_BETA),
            ("e_local16", self.e_local16, MAX_PROFILE_ENERGY),
            ("e_main16", self.e_main16, MAX_PROFILE_ENERGY),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= max) {
                return Err(error(
                    field,
                    format!("must be a number greater than 0 and at most {max:e}, not {value:e}"),
                ));
            }
        }
        if self.parallel_macs == 0 {
            return Err(error("parallel_macs", "must be at least 1".into()));
        }
        Ok(())
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
        name = "t"
        description = "test"
        units = "pJ"
        e_mac16 = 1.0
        beta = 1.25
        e_local16 = 1
        e_main16 = 100.0
        parallel_macs = 64
    "#;

    #[test]
    fn every_preset_parses_and_is_named_after_its_file() {
        for name in Profile::preset_names() {
            let profile = Profile::preset(name).unwrap().unwrap();
            assert_eq!(profile.name, name);
            assert!(!profile.description.is_empty() && !profile.units.is_empty());
        }
        assert!(Profile::preset("nope").is_none());
        assert_eq!(
            Profile::resolve(DEFAULT_PROFILE).unwrap().name,
            DEFAULT_PROFILE
        );
    }

    #[test]
    fn the_horowitz_fit_passes_through_both_measured_macs() {
        let profile = Profile::preset("horowitz45-pj").unwrap().unwrap();
        let mac = |bits: f64| profile.e_mac16 * (bits / 16.0).powf(profile.beta);
        assert!((mac(8.0) - (0.2 + 0.03)).abs() < 0.001, "{}", mac(8.0));
        assert!((mac(32.0) - (3.1 + 0.1)).abs() < 0.01, "{}", mac(32.0));
    }

    #[test]
    fn integers_are_accepted_for_energies() {
        assert_eq!(Profile::parse(VALID, "p.toml").unwrap().e_local16, 1.0);
    }

    fn error_of(text: &str) -> EnergyError {
        Profile::parse(text, "p.toml").unwrap_err()
    }

    #[test]
    fn bad_constants_are_named() {
        let negative = VALID.replace("e_main16 = 100.0", "e_main16 = -3");
        assert!(matches!(error_of(&negative), EnergyError::Profile { .. }));
        assert_eq!(error_of(&negative).field(), "e_main16");
        let zero = VALID.replace("beta = 1.25", "beta = 0");
        assert_eq!(error_of(&zero).field(), "beta");
        let infinite = VALID.replace("e_mac16 = 1.0", "e_mac16 = inf");
        assert_eq!(error_of(&infinite).field(), "e_mac16");
        let no_parallelism = VALID.replace("parallel_macs = 64", "parallel_macs = 0");
        assert_eq!(error_of(&no_parallelism).field(), "parallel_macs");
        let negative_parallelism = VALID.replace("parallel_macs = 64", "parallel_macs = -1");
        assert_eq!(error_of(&negative_parallelism).field(), "parallel_macs");
        let text = VALID.replace("beta = 1.25", "beta = \"high\"");
        assert_eq!(error_of(&text).field(), "beta");
    }

    #[test]
    fn a_missing_constant_is_named() {
        let missing = VALID.replace("e_local16 = 1", "");
        let error = error_of(&missing);
        assert_eq!(
            error,
            EnergyError::Missing {
                file: "p.toml".into(),
                field: "e_local16".into()
            }
        );
        assert!(error.to_string().starts_with("p.toml: e_local16: missing"));
    }

    #[test]
    fn unknown_fields_and_broken_toml_are_one_line_errors() {
        let unknown = format!("{VALID}\ne_dram = 3\n");
        assert!(error_of(&unknown).to_string().contains("e_dram"));
        let broken = error_of("name = ");
        assert!(matches!(broken, EnergyError::Syntax { .. }), "{broken:?}");
        assert!(
            broken
                .to_string()
                .starts_with("p.toml: (top level): line 1"),
            "{broken}"
        );
        assert_eq!(broken.to_string().lines().count(), 1);
    }

    #[test]
    fn an_unknown_name_lists_the_presets() {
        let error = Profile::resolve("no-such-profile").unwrap_err();
        assert!(
            matches!(&error, EnergyError::UnknownProfile { name, .. } if name == "no-such-profile")
        );
        for name in Profile::preset_names() {
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
