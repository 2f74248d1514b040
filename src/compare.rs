//! Two models' metrics side by side: the values of A and B and their difference, key by key.
//! The command line's `compare` and the window's metric table read the same [`Comparison`].

use serde_json::{Map, Value};

/// One metric of both models. `difference` is B - A where both are numbers (element-wise for
/// arrays of the same length), absent otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub key: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
    pub difference: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Rows for every key of either eval object, in sorted order; keys that only describe a
    /// model (family, preset, data) come first, as they are not metrics.
    pub fn new(a: &Value, b: &Value) -> Self {
        let empty = Map::new();
        let (ma, mb) = (
            a.as_object().unwrap_or(&empty),
            b.as_object().unwrap_or(&empty),
        );
        let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
        keys.sort_by_key(|k| (!is_descriptive(k), k.as_str()));
        keys.dedup();
        let rows = keys
            .into_iter()
            .map(|k| {
                let (va, vb) = (ma.get(k), mb.get(k));
                Row {
                    key: k.clone(),
                    a: va.cloned(),
                    b: vb.cloned(),
                    difference: va.zip(vb).and_then(|(x, y)| difference(x, y)),
                }
            })
            .collect();
        Self { rows }
    }

    /// `{"a": {...}, "b": {...}, "difference": {...}}`: both evals as `eval --json` prints
    /// them, and B - A for every numeric key they share.
    pub fn to_json(&self, a: &Value, b: &Value) -> Value {
        let difference: Map<String, Value> = self
            .rows
            .iter()
            .filter_map(|r| Some((r.key.clone(), r.difference.clone()?)))
            .collect();
        serde_json::json!({ "a": a, "b": b, "difference": difference })
    }

    /// A plain table for a terminal: key, A, B, B - A.
    pub fn to_text(&self) -> String {
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.key.clone(),
                    show(r.a.as_ref()),
                    show(r.b.as_ref()),
                    show(r.difference.as_ref()),
                ]
            })
            .collect();
        let header = ["metric", "A", "B", "B - A"].map(String::from);
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header).chain(&cells) {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        std::iter::once(&header)
            .chain(&cells)
            .map(|row| {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                line.join("  ").trim_end().to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn is_descriptive(key: &str) -> bool {
    matches!(key, "family" | "preset" | "data")
}

fn difference(a: &Value, b: &Value) -> Option<Value> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(Value::from(y.as_f64()? - x.as_f64()?)),
        (Value::Array(xs), Value::Array(ys)) if xs.len() == ys.len() && !xs.is_empty() => xs
            .iter()
            .zip(ys)
            .map(|(x, y)| Some(Value::from(y.as_f64()? - x.as_f64()?)))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        _ => None,
    }
}

pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.4}"),
            _ => n.to_string(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(xs)) => {
            let parts: Vec<String> = xs.iter().map(|x| show(Some(x))).collect();
            format!("[{}]", parts.join(" "))
        }
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_b_minus_a_for_shared_numbers_only() {
        let a = json!({"family": "x", "r2": 0.5, "n": 10, "rel": [1.0, 0.5], "only_a": 1.0});
        let b = json!({"family": "x", "r2": 0.75, "n": 12, "rel": [0.5, 0.5], "only_b": "s"});
        let c = Comparison::new(&a, &b);
        let keys: Vec<&str> = c.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["family", "n", "only_a", "only_b", "r2", "rel"]);
        let j = c.to_json(&a, &b);
        assert_eq!(j["difference"]["r2"], json!(0.25));
        assert_eq!(j["difference"]["n"], json!(2.0));
        assert_eq!(j["difference"]["rel"], json!([-0.5, 0.0]));
        assert!(j["difference"].get("family").is_none());
        assert!(j["difference"].get("only_a").is_none());
        assert_eq!(j["a"], a);
        let text = c.to_text();
        assert!(
            text.lines()
                .any(|l| l.starts_with("r2") && l.contains("0.2500")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("only_b") && l.contains(" - ")),
            "{text}"
        );
    }
}
