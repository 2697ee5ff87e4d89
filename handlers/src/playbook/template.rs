//! `{{name}}` substitution in step arguments. A value that is exactly one placeholder takes the
//! parameter's type (so `replicas: "{{replicas}}"` becomes a number); otherwise text is interpolated.

use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([a-z][a-z0-9_.]*)\s*\}\}").expect("static regex"));

/// Names of every placeholder in a value.
pub fn placeholders(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, &mut |s| {
        for c in PLACEHOLDER.captures_iter(s) {
            out.push(c[1].to_string());
        }
    });
    out
}

fn walk(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        Value::Object(o) => o.values().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// Substitutes placeholders; unknown names are an error naming them.
pub fn render(v: &Value, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => {
            if let Some(c) = PLACEHOLDER.captures(s)
                && c.get(0)
                    .is_some_and(|m| m.start() == 0 && m.end() == s.len())
            {
                return vars
                    .get(&c[1])
                    .cloned()
                    .ok_or_else(|| format!("unknown placeholder {{{{{}}}}}", &c[1]));
            }
            let mut missing = None;
            let out = PLACEHOLDER.replace_all(s, |c: &regex::Captures| match vars.get(&c[1]) {
                Some(Value::String(x)) => x.clone(),
                Some(other) => other.to_string(),
                None => {
                    missing = Some(c[1].to_string());
                    String::new()
                }
            });
            if let Some(m) = missing {
                return Err(format!("unknown placeholder {{{{{m}}}}}"));
            }
            Value::String(out.into_owned())
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render(x, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_placeholder_keeps_type_and_partial_interpolates() {
        let vars: BTreeMap<String, Value> = [
            ("replicas".to_string(), json!(3)),
            ("region".to_string(), json!("us-west-2")),
        ]
        .into();
        assert_eq!(render(&json!("{{replicas}}"), &vars).unwrap(), json!(3));
        assert_eq!(
            render(&json!("to {{ region }} now"), &vars).unwrap(),
            json!("to us-west-2 now")
        );
        assert_eq!(
            render(&json!("{{nope}}"), &vars).unwrap_err(),
            "unknown placeholder {{nope}}"
        );
        assert_eq!(
            placeholders(&json!({"a": "{{x}} {{y}}", "b": ["{{z}}"]})),
            vec!["x", "y", "z"]
        );
    }
}
