//! Reading `gepa.toml`: the toml crate parses the text once into its spanned tree
//! (`toml::de::DeTable`, every key and value with its byte range), the config types are
//! deserialized from that tree by the deserializer below, and the same tree gives the line of each
//! key (`KeyLines`) for the problems found after parsing. The deserializer knows, for every value,
//! its key, the table it sits in and where it is written, and serde hands it the refusals as data
//! (the unknown key with the keys expected, the missing key, the type asked for), so each message
//! is built from those and not from toml's or serde's English.

use super::ProjectConfig;
use crate::project::error::ProjectError;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use toml::de::{DeArray, DeInteger, DeTable, DeValue};
use toml::Spanned;

/// Parses the text of `gepa.toml`. Errors name the line and key and say what was expected.
pub fn parse(text: &str) -> Result<ProjectConfig, ProjectError> {
    parse_with_lines(text).map(|(config, _)| config)
}

/// `parse`, with where each key of the text is written.
pub(crate) fn parse_with_lines(text: &str) -> Result<(ProjectConfig, KeyLines), ProjectError> {
    let root = tree(text)?;
    let config = from_tree(text, &root).map_err(DeError::explain)?;
    Ok((config, KeyLines::of(text, &root)))
}

/// The keys a table of gepa.toml accepts, as the config types list them: what the refusal of an
/// unknown key written in `text` expected (None when `text` has no unknown key). tests/docs.rs
/// reads it to check that every key is documented.
#[doc(hidden)]
pub fn keys_expected_instead(text: &str) -> Option<&'static [&'static str]> {
    match from_tree(text, &tree(text).ok()?) {
        Err(DeError { refusal: Refusal::UnknownKey { expected, .. }, .. }) => Some(expected),
        _ => None,
    }
}

/// The one parse of the text: toml's spanned tree, the document as a table value.
fn tree(text: &str) -> Result<Spanned<DeValue<'_>>, ProjectError> {
    let root = DeTable::parse(text).map_err(|e| syntax_error(text, &e))?;
    let (span, table) = (root.span(), root.into_inner());
    Ok(Spanned::new(span, DeValue::Table(table)))
}

fn from_tree(text: &str, root: &Spanned<DeValue<'_>>) -> Result<ProjectConfig, DeError> {
    ProjectConfig::deserialize(ValueDe {
        src: text,
        value: root,
        path: String::new(),
        key: None,
        section: String::new(),
    })
}

/// A TOML syntax error: toml's own message at toml's own span.
fn syntax_error(text: &str, err: &toml::de::Error) -> ProjectError {
    let line = err.span().map(|s| line_of(text, s.start));
    let message = err.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    ProjectError::config(line, message)
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

/// The closest of `options` to `name`, if it is close enough to be a likely typo.
pub(crate) fn strsim_best<'a>(name: &str, options: &'a [String]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (strsim::jaro_winkler(&name.to_lowercase(), &o.to_lowercase()), o))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o.as_str())
}

// ---------------------------------------------------------------------------------------------
// Where keys are written.

/// Where each key and table of the text is written, so problems found after parsing (a missing
/// file, an unknown model) can name their line. Paths look like `models.task.model`,
/// `components[1].file`, `system.steps[0].user`.
#[derive(Debug, Default, Clone)]
pub struct KeyLines {
    entries: Vec<(String, usize)>,
}

impl KeyLines {
    /// The lines of the keys of a TOML text (none if it does not parse).
    #[cfg(test)]
    pub(super) fn new(text: &str) -> Self {
        tree(text).map(|root| KeyLines::of(text, &root)).unwrap_or_default()
    }

    fn of(text: &str, root: &Spanned<DeValue<'_>>) -> Self {
        fn walk(text: &str, value: &DeValue<'_>, path: &str, out: &mut Vec<(String, usize)>) {
            match value {
                DeValue::Table(t) => {
                    for (k, v) in t.iter() {
                        let p =
                            if path.is_empty() { k.get_ref().to_string() } else { format!("{path}.{}", k.get_ref()) };
                        out.push((p.clone(), line_of(text, k.span().start)));
                        walk(text, v.get_ref(), &p, out);
                    }
                }
                DeValue::Array(a) => {
                    for (i, e) in a.iter().enumerate() {
                        let p = format!("{path}[{i}]");
                        out.push((p.clone(), line_of(text, e.span().start)));
                        walk(text, e.get_ref(), &p, out);
                    }
                }
                _ => {}
            }
        }
        let mut entries = Vec::new();
        walk(text, root.get_ref(), "", &mut entries);
        KeyLines { entries }
    }

    /// The line of a key, or of the nearest enclosing table that is written down.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path.to_string();
        loop {
            if let Some((_, line)) = self.entries.iter().find(|(e, _)| *e == p) {
                return Some(*line);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing the tree, refusals kept as data.

/// Why a value was refused, as serde and the deserializer hand it over.
#[derive(Debug)]
enum Refusal {
    UnknownKey { key: String, expected: &'static [&'static str] },
    UnknownValue { value: String, expected: &'static [&'static str] },
    MissingKey { key: &'static str },
    WrongType { expected: String, found: String },
    BadValue { expected: String, found: String },
    Other(String),
}

/// Where a refusal is: its line, the key it concerns (the last named one: `command` for
/// `command[1]`) and how the table it sits in is shown (`[optimizer]`, `[[system.steps]]`).
#[derive(Debug, Clone, Default)]
struct Place {
    line: Option<usize>,
    key: Option<String>,
    section: String,
    /// The unknown key names a table written as a header (`[optimiser]`).
    is_header: bool,
}

#[derive(Debug)]
struct DeError {
    refusal: Refusal,
    place: Option<Box<Place>>,
}

impl DeError {
    fn new(refusal: Refusal) -> Self {
        DeError { refusal, place: None }
    }

    /// Keeps the innermost place: the first one given wins.
    fn at(mut self, place: impl FnOnce() -> Place) -> Self {
        if self.place.is_none() {
            self.place = Some(Box::new(place()));
        }
        self
    }

    fn explain(self) -> ProjectError {
        let place = self.place.map(|p| *p).unwrap_or_default();
        let key = place.key.as_deref().unwrap_or("");
        let key_part = if key.is_empty() { String::new() } else { format!(" for `{key}`") };
        let section = in_section(&place.section);
        let mut line = place.line;
        let message = match self.refusal {
            Refusal::UnknownKey { key, expected } => {
                let what = if place.is_header { "section" } else { "key" };
                format!("unknown {what} `{key}`{section}{}", suggestion(&key, expected))
            }
            Refusal::UnknownValue { value, expected } => {
                let names: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
                let did_you_mean =
                    strsim_best(&value, &names).map(|s| format!("; did you mean \"{s}\"?")).unwrap_or_default();
                format!(
                    "unknown value \"{value}\"{key_part}{section}{did_you_mean} Expected one of: {}",
                    names.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", ")
                )
            }
            Refusal::MissingKey { key } if place.section.is_empty() => {
                line = None;
                match key {
                    "components" => "missing [[components]]: name at least one text to optimize \
                                     (name = \"instruction\", file = \"prompts/instruction.md\")"
                        .to_string(),
                    "models" => "missing [models]: define at least [models.task]".to_string(),
                    other => format!("missing section [{other}]"),
                }
            }
            Refusal::MissingKey { key } => format!("missing key `{key}`{section}"),
            Refusal::WrongType { expected, found } => {
                format!("wrong type{key_part}{section}: expected {expected}, found {found}")
            }
            Refusal::BadValue { expected, found } => {
                format!("bad value{key_part}{section}: expected {expected}, found {found}")
            }
            Refusal::Other(message) => message,
        };
        ProjectError::config(line, message)
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.refusal)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(Refusal::Other(msg.to_string()))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(Refusal::UnknownKey { key: field.to_string(), expected })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(Refusal::UnknownValue { value: variant.to_string(), expected })
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::new(Refusal::MissingKey { key: field })
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(Refusal::WrongType { expected: exp.to_string(), found: unexp.to_string() })
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(Refusal::BadValue { expected: exp.to_string(), found: unexp.to_string() })
    }
}

fn in_section(section: &str) -> String {
    if section.is_empty() {
        String::new()
    } else {
        format!(" in {section}")
    }
}

fn suggestion(name: &str, expected: &[&str]) -> String {
    let expected: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
    match strsim_best(name, &expected) {
        Some(best) => format!("; did you mean `{best}`?"),
        None if expected.is_empty() => "; this section takes no keys".to_string(),
        None => {
            format!("; expected one of: {}", expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "))
        }
    }
}

/// `a.b[0].c` -> `a.b.c`: `[[system.steps]]` reads better than `system.steps[0]`.
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

const WHOLE_NUMBER: &str = "a whole number";
const COUNT: &str = "a whole number (0 or more)";
const NUMBER: &str = "a number";
const ARRAY: &str = "an array, like [\"a\", \"b\"]";
const TABLE: &str = "a table";

/// A value of the tree with where it is.
struct ValueDe<'a, 'i> {
    src: &'a str,
    value: &'a Spanned<DeValue<'i>>,
    /// `components[1].file`; empty for the document.
    path: String,
    /// The last named key of `path`.
    key: Option<String>,
    /// How the table holding `key` is shown.
    section: String,
}

impl<'a, 'i> ValueDe<'a, 'i> {
    fn place(&self) -> Place {
        Place {
            line: Some(line_of(self.src, self.value.span().start)),
            key: self.key.clone(),
            section: self.section.clone(),
            is_header: false,
        }
    }

    /// How this value, a table, is shown in messages about its own keys.
    fn own_section(&self) -> String {
        if self.path.is_empty() {
            return String::new();
        }
        let written = self.src.get(self.value.span()).unwrap_or("");
        if written.starts_with("[[") {
            format!("[[{}]]", strip_indices(&self.path))
        } else if written.starts_with('{') {
            // An inline table: `components = [{ name = "a", fil = "x" }]`.
            format!("`{}`", self.key.as_deref().unwrap_or(""))
        } else {
            format!("[{}]", self.path)
        }
    }

    fn found(&self) -> String {
        match self.value.get_ref() {
            DeValue::String(s) => format!("string {s:?}"),
            DeValue::Integer(i) => format!("integer {i}"),
            DeValue::Float(f) => format!("number {f}"),
            DeValue::Boolean(b) => format!("{b}"),
            DeValue::Datetime(d) => format!("date {d}"),
            DeValue::Array(_) => "an array".to_string(),
            DeValue::Table(_) => "a table".to_string(),
        }
    }

    fn wrong_type(&self, expected: &str) -> DeError {
        DeError::new(Refusal::WrongType { expected: expected.to_string(), found: self.found() }).at(|| self.place())
    }

    /// An integer within `min..=max`, handed to `visit`.
    fn integer<V: Visitor<'i>, F>(self, visitor: V, min: i128, max: i128, visit: F) -> Result<V::Value, DeError>
    where
        F: FnOnce(V, i128) -> Result<V::Value, DeError>,
    {
        let DeValue::Integer(i) = self.value.get_ref() else {
            return Err(self.wrong_type(if min < 0 { WHOLE_NUMBER } else { COUNT }));
        };
        match integer_value(i).filter(|n| (min..=max).contains(n)) {
            Some(n) => visit(visitor, n).map_err(|e: DeError| e.at(|| self.place())),
            None => {
                let expected = if min == 0 && max >= u64::MAX as i128 {
                    COUNT.to_string()
                } else if min < 0 && max >= i64::MAX as i128 {
                    WHOLE_NUMBER.to_string()
                } else {
                    format!("a whole number from {min} to {max}")
                };
                Err(DeError::new(Refusal::BadValue { expected, found: self.found() }).at(|| self.place()))
            }
        }
    }

    fn table<V: Visitor<'i>>(self, visitor: V, table: &'a DeTable<'i>) -> Result<V::Value, DeError> {
        let own = Place {
            line: (!self.path.is_empty()).then(|| line_of(self.src, self.value.span().start)),
            key: None,
            section: self.own_section(),
            is_header: false,
        };
        let access = MapDe {
            src: self.src,
            entries: table.iter(),
            pending: None,
            path: self.path.clone(),
            section: own.section.clone(),
        };
        visitor.visit_map(access).map_err(|e: DeError| e.at(|| own))
    }

    fn array<V: Visitor<'i>>(self, visitor: V, array: &'a DeArray<'i>) -> Result<V::Value, DeError> {
        let place = self.place();
        let access = SeqDe { outer: &self, items: array.iter().enumerate() };
        visitor.visit_seq(access).map_err(|e: DeError| e.at(|| place))
    }
}

fn integer_value(i: &DeInteger<'_>) -> Option<i128> {
    i128::from_str_radix(i.as_str(), i.radix()).ok()
}

fn float_value(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Float(f) => f.as_str().parse().ok(),
        DeValue::Integer(i) => integer_value(i).map(|n| n as f64),
        _ => None,
    }
}

macro_rules! integer_methods {
    ($($method:ident $ty:ty => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.integer(visitor, <$ty>::MIN as i128, <$ty>::MAX as i128, |v, n| v.$visit(n as $ty))
        }
    )*};
}

impl<'a, 'i> de::Deserializer<'i> for ValueDe<'a, 'i> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.value.get_ref() {
            DeValue::String(s) => visitor.visit_str(s),
            DeValue::Integer(i) => match integer_value(i) {
                Some(n) if i64::try_from(n).is_ok() => visitor.visit_i64(n as i64),
                Some(n) if u64::try_from(n).is_ok() => visitor.visit_u64(n as u64),
                _ => Err(DeError::new(Refusal::BadValue { expected: WHOLE_NUMBER.into(), found: self.found() })),
            },
            DeValue::Float(_) => visitor.visit_f64(float_value(self.value.get_ref()).unwrap_or(f64::NAN)),
            DeValue::Boolean(b) => visitor.visit_bool(*b),
            DeValue::Datetime(d) => visitor.visit_string(d.to_string()),
            DeValue::Array(a) => return self.array(visitor, a),
            DeValue::Table(t) => return self.table(visitor, t),
        };
        r.map_err(|e: DeError| e.at(|| self.place()))
    }

    integer_methods! {
        deserialize_i8 i8 => visit_i8, deserialize_i16 i16 => visit_i16, deserialize_i32 i32 => visit_i32,
        deserialize_i64 i64 => visit_i64, deserialize_u8 u8 => visit_u8, deserialize_u16 u16 => visit_u16,
        deserialize_u32 u32 => visit_u32, deserialize_u64 u64 => visit_u64,
    }

    fn deserialize_f32<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        match float_value(self.value.get_ref()) {
            Some(x) => visitor.visit_f64(x).map_err(|e: DeError| e.at(|| self.place())),
            None => Err(self.wrong_type(NUMBER)),
        }
    }

    fn deserialize_bool<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.get_ref() {
            DeValue::Boolean(b) => visitor.visit_bool(*b).map_err(|e: DeError| e.at(|| self.place())),
            _ => Err(self.wrong_type("true or false")),
        }
    }

    fn deserialize_str<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.get_ref() {
            DeValue::String(s) => visitor.visit_str(s).map_err(|e: DeError| e.at(|| self.place())),
            _ => Err(self.wrong_type("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        // A key that is written is `Some`; `None` is a key left out.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'i>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.get_ref() {
            DeValue::Array(a) => self.array(visitor, a),
            _ => Err(self.wrong_type(ARRAY)),
        }
    }

    fn deserialize_tuple<V: Visitor<'i>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'i>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value.get_ref() {
            DeValue::Table(t) => self.table(visitor, t),
            _ => Err(self.wrong_type(TABLE)),
        }
    }

    fn deserialize_struct<V: Visitor<'i>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'i>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value.get_ref() {
            DeValue::String(s) => {
                let name: de::value::StrDeserializer<'_, DeError> = s.as_ref().into_deserializer();
                visitor.visit_enum(name).map_err(|e: DeError| e.at(|| self.place()))
            }
            _ => {
                let names: Vec<String> = variants.iter().map(|v| format!("\"{v}\"")).collect();
                Err(self.wrong_type(&format!("one of {}", names.join(", "))))
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'i>>(self, _: V) -> Result<V::Value, DeError> {
        Err(self.wrong_type("nothing"))
    }

    fn deserialize_unit_struct<V: Visitor<'i>>(self, _: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_bytes<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'i>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }
}

/// The keys of a table, each with its value.
struct MapDe<'a, 'i> {
    src: &'a str,
    entries: toml::map::Iter<'a, Spanned<toml::de::DeString<'i>>, Spanned<DeValue<'i>>>,
    pending: Option<(&'a str, &'a Spanned<DeValue<'i>>)>,
    path: String,
    section: String,
}

impl<'a, 'i> de::MapAccess<'i> for MapDe<'a, 'i> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'i>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        let name: &'a str = key.get_ref();
        self.pending = Some((name, value));
        let as_str: de::value::StrDeserializer<'_, DeError> = name.into_deserializer();
        seed.deserialize(as_str).map(Some).map_err(|e| {
            e.at(|| Place {
                line: Some(line_of(self.src, key.span().start)),
                key: Some(name.to_string()),
                section: self.section.clone(),
                is_header: matches!(value.get_ref(), DeValue::Table(_))
                    && self.src.get(value.span()).is_some_and(|w| w.starts_with('[')),
            })
        })
    }

    fn next_value_seed<V: DeserializeSeed<'i>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self.pending.take().ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(ValueDe {
            src: self.src,
            value,
            path: if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) },
            key: Some(key.to_string()),
            section: self.section.clone(),
        })
    }
}

/// The items of an array; each keeps the array's key and table.
struct SeqDe<'o, 'a, 'i> {
    outer: &'o ValueDe<'a, 'i>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Spanned<DeValue<'i>>>>,
}

impl<'i> de::SeqAccess<'i> for SeqDe<'_, '_, 'i> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'i>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((i, value)) = self.items.next() else { return Ok(None) };
        seed.deserialize(ValueDe {
            src: self.outer.src,
            value,
            path: format!("{}[{i}]", self.outer.path),
            key: self.outer.key.clone(),
            section: self.outer.section.clone(),
        })
        .map(Some)
    }
}
