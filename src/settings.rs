//! On/off settings from the environment (`VOXAUG_HUGE_PAGES`, `VOXAUG_MAP_READS`): one reading of
//! their words for every switch.

/// `Some(true)` for `on`, `1`, `true`, `yes`; `Some(false)` for `off`, `0`, `false`, `no` (any case,
/// spaces around ignored); `None` for anything else, which leaves the setting at its default.
pub fn switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Some(true),
        "off" | "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// [`switch`] of the environment variable `name` (`None` when it is unset or not a switch word).
pub fn env_switch(name: &str) -> Option<bool> {
    std::env::var(name).ok().as_deref().and_then(switch)
}

#[cfg(test)]
mod tests {
    #[test]
    fn switch_words() {
        for on in ["on", "1", "true", "Yes", " ON "] {
            assert_eq!(super::switch(on), Some(true), "{on}");
        }
        for off in ["off", "0", "false", "No", " OFF "] {
            assert_eq!(super::switch(off), Some(false), "{off}");
        }
        for other in ["", "auto", "2", "of"] {
            assert_eq!(super::switch(other), None, "{other}");
        }
    }
}
