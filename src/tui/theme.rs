//! Themes are data: flat TOML files with one semantic name per role (`score_high`, `diff_added`,
//! `selection`, …). The built-ins are embedded; user themes live in the config dir's `themes/`.
//! `NO_COLOR` drops every colour but keeps modifiers, so glyphs and underlines still carry meaning.

use anyhow::{anyhow, bail, Context, Result};
use ratatui::style::{Color, Modifier, Style};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

/// Every role a theme sets; a user theme may leave some out (they come from `dark`).
pub const ROLES: &[&str] = &[
    "text",
    "muted",
    "border",
    "title",
    "accent",
    "selection",
    "score_high",
    "score_mid",
    "score_low",
    "score_none",
    "diff_added",
    "diff_removed",
    "warning",
    "error",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub border: Style,
    pub title: Style,
    pub accent: Style,
    pub selection: Style,
    pub score_high: Style,
    pub score_mid: Style,
    pub score_low: Style,
    /// Score 0 (or not yet scored).
    pub score_none: Style,
    pub diff_added: Style,
    pub diff_removed: Style,
    pub warning: Style,
    pub error: Style,
    /// False under NO_COLOR.
    pub colour: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::builtin("dark").expect("the dark theme is valid")
    }
}

impl Theme {
    fn slot(&mut self, role: &str) -> Option<&mut Style> {
        Some(match role {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "border" => &mut self.border,
            "title" => &mut self.title,
            "accent" => &mut self.accent,
            "selection" => &mut self.selection,
            "score_high" => &mut self.score_high,
            "score_mid" => &mut self.score_mid,
            "score_low" => &mut self.score_low,
            "score_none" => &mut self.score_none,
            "diff_added" => &mut self.diff_added,
            "diff_removed" => &mut self.diff_removed,
            "warning" => &mut self.warning,
            "error" => &mut self.error,
            _ => return None,
        })
    }

    fn blank(name: &str) -> Theme {
        let s = Style::default();
        Theme {
            name: name.to_string(),
            text: s,
            muted: s,
            border: s,
            title: s,
            accent: s,
            selection: s,
            score_high: s,
            score_mid: s,
            score_low: s,
            score_none: s,
            diff_added: s,
            diff_removed: s,
            warning: s,
            error: s,
            colour: true,
        }
    }

    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Some(Theme::parse(name, text, None).unwrap_or_else(|e| panic!("built-in theme {name}: {e:#}")))
    }

    /// Parses a theme file; roles it leaves out come from `base` (or stay plain).
    pub fn parse(name: &str, text: &str, base: Option<&Theme>) -> Result<Theme> {
        let table: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let mut theme = match base {
            Some(b) => Theme { name: name.to_string(), ..b.clone() },
            None => Theme::blank(name),
        };
        for (key, value) in &table {
            let style = parse_style(value).with_context(|| format!("`{key}`"))?;
            match theme.slot(key) {
                Some(slot) => *slot = style,
                None => {
                    let hint = did_you_mean(key, ROLES).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                    bail!("`{key}` is not a theme role{hint} (roles: {})", ROLES.join(", "));
                }
            }
        }
        Ok(theme)
    }

    /// The theme named by `--theme`: a built-in, `<config>/themes/<name>.toml`, or a path to a file.
    pub fn load(name: Option<&str>, config_dir: Option<&Path>) -> Result<Theme> {
        let name = name.unwrap_or("dark");
        if let Some(t) = Theme::builtin(name) {
            return Ok(t);
        }
        let mut tried: Vec<PathBuf> = Vec::new();
        let direct = PathBuf::from(name);
        if name.ends_with(".toml") || name.contains('/') {
            tried.push(direct);
        }
        if let Some(dir) = config_dir {
            tried.push(dir.join("themes").join(format!("{name}.toml")));
        }
        for path in &tried {
            if path.is_file() {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the theme {}", path.display()))?;
                let dark = Theme::default();
                return Theme::parse(name, &text, Some(&dark)).map_err(|e| anyhow!("theme {}: {e:#}", path.display()));
            }
        }
        let builtins: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        let hint = did_you_mean(name, &builtins).map(|s| format!(" Did you mean `{s}`?")).unwrap_or_default();
        let where_ = tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        bail!(
            "no theme named `{name}`.{hint} Built-in themes: {}; user themes are TOML files{}",
            builtins.join(", "),
            if where_.is_empty() { String::new() } else { format!(" (looked for {where_})") }
        )
    }

    /// NO_COLOR: no colours anywhere; selection shows as reversed text instead.
    pub fn without_colour(mut self) -> Theme {
        for role in ROLES {
            if let Some(s) = self.slot(role) {
                *s = Style::default().add_modifier(s.add_modifier).remove_modifier(s.sub_modifier);
            }
        }
        self.selection = self.selection.add_modifier(Modifier::REVERSED);
        self.colour = false;
        self
    }

    /// The style for a score in [0, 1] written as a number: 0 is a failure and looks like one.
    pub fn score(&self, score: f64) -> Style {
        match score_band(score) {
            ScoreBand::High => self.score_high,
            ScoreBand::Mid => self.score_mid,
            ScoreBand::Low | ScoreBand::Zero => self.score_low,
        }
    }

    /// The style of a heat-map cell: a 0 recedes (`score_none`) so the wins stand out.
    pub fn cell(&self, score: f64) -> Style {
        match score_band(score) {
            ScoreBand::Zero => self.score_none,
            _ => self.score(score),
        }
    }
}

/// NO_COLOR is set to something (https://no-color.org).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreBand {
    High,
    Mid,
    Low,
    Zero,
}

pub fn score_band(score: f64) -> ScoreBand {
    if score >= 0.75 {
        ScoreBand::High
    } else if score >= 0.25 {
        ScoreBand::Mid
    } else if score > 0.0 {
        ScoreBand::Low
    } else {
        ScoreBand::Zero
    }
}

fn parse_colour(s: &str) -> Result<Color> {
    Color::from_str(s).map_err(|_| {
        anyhow!("`{s}` is not a colour (use \"#rrggbb\", a name such as \"lightgreen\", or an index 0-255)")
    })
}

fn parse_style(v: &toml::Value) -> Result<Style> {
    match v {
        toml::Value::String(s) => Ok(Style::default().fg(parse_colour(s)?)),
        toml::Value::Table(t) => {
            let mut style = Style::default();
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("fg", toml::Value::String(s)) => style = style.fg(parse_colour(s)?),
                    ("bg", toml::Value::String(s)) => style = style.bg(parse_colour(s)?),
                    ("modifiers", toml::Value::Array(a)) => {
                        for m in a {
                            let m = m.as_str().ok_or_else(|| anyhow!("modifiers are strings"))?;
                            style = style.add_modifier(parse_modifier(m)?);
                        }
                    }
                    (k, _) if ["fg", "bg", "modifiers"].contains(&k) => bail!("`{k}` has the wrong type"),
                    (k, _) => bail!("unknown key `{k}` (use fg, bg, modifiers)"),
                }
            }
            Ok(style)
        }
        _ => bail!("a style is a colour string or a table {{ fg, bg, modifiers }}"),
    }
}

fn parse_modifier(m: &str) -> Result<Modifier> {
    Ok(match m {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" => Modifier::UNDERLINED,
        "reversed" => Modifier::REVERSED,
        "crossed_out" => Modifier::CROSSED_OUT,
        other => bail!("unknown modifier `{other}` (bold, dim, italic, underlined, reversed, crossed_out)"),
    })
}

pub(crate) fn did_you_mean<'a>(word: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (strsim::jaro_winkler(word, o), *o))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_set_every_role() {
        for (name, text) in BUILTIN {
            let table: toml::Table = toml::from_str(text).unwrap();
            for role in ROLES {
                assert!(table.contains_key(*role), "{name} lacks {role}");
            }
            Theme::parse(name, text, None).unwrap();
        }
    }

    #[test]
    fn typos_are_explained() {
        let e = Theme::parse("x", "score_hgh = \"red\"", None).unwrap_err().to_string();
        assert!(e.contains("did you mean `score_high`"), "{e}");
        let e = Theme::parse("x", "text = \"blurple\"", None).unwrap_err();
        assert!(format!("{e:#}").contains("not a colour"), "{e:#}");
    }

    #[test]
    fn user_themes_come_from_the_config_dir_and_fill_gaps_from_dark() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("themes")).unwrap();
        std::fs::write(d.path().join("themes/mine.toml"), "score_high = \"#ff0000\"").unwrap();
        let t = Theme::load(Some("mine"), Some(d.path())).unwrap();
        assert_eq!(t.score_high.fg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(t.diff_added, Theme::default().diff_added);
        std::fs::write(d.path().join("themes/bad.toml"), "selection = 3").unwrap();
        let e = format!("{:#}", Theme::load(Some("bad"), Some(d.path())).unwrap_err());
        assert!(e.contains("bad.toml") && e.contains("selection"), "{e}");
        let e = Theme::load(Some("drak"), Some(d.path())).unwrap_err().to_string();
        assert!(e.contains("Did you mean `dark`"), "{e}");
    }

    #[test]
    fn no_colour_keeps_modifiers_and_reverses_selection() {
        let t = Theme::default().without_colour();
        assert_eq!(t.text.fg, None);
        assert!(t.diff_removed.add_modifier.contains(Modifier::CROSSED_OUT));
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(t.selection.bg, None);
    }
}
