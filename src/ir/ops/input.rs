//! `input`: the image, 8-bit unsigned pixels; it reads nothing.

use super::OpRules;

pub struct Input;

impl OpRules for Input {
    fn name(&self) -> &'static str {
        "input"
    }

    fn arity(&self) -> usize {
        0
    }

    fn describe(&self) -> String {
        "input pixels".into()
    }

    fn colour(&self) -> &'static str {
        "#dddddd"
    }
}
