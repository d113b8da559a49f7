//! `FilterString`: the SQL-like subset K3Cloud clients write, and its array-of-conditions form.
//!
//! Supported: `=`, `<>`/`!=`, `<`, `<=`, `>`, `>=`, `[not] in (…)`, `[not] like '…%'`,
//! `is [not] null`, `and`, `or`, `not`, parentheses, quoted strings (`''` escapes, `N'…'`),
//! numbers, and constant comparisons such as `1=1`. The array form
//! `[{"Left","FieldName","Compare","Value","Right","Logic"}]` is rewritten into the string
//! form; only `Compare` 67 (equality, the code every sample uses) is known **[I]**; `Logic`
//! joins a condition to the next one (0 and, 1 or) **[I]**. Parsing and evaluation are pure;
//! `query` resolves the field keys.

use std::cmp::Ordering;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::sim::kingdee::body::scalar_text;
use crate::sim::kingdee::save::parse_decimal;

/// A value a field key yields for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Null,
    Integer(i64),
    Decimal(Decimal),
    Text(String),
    Date(NaiveDateTime),
    Bool(bool),
}

/// A literal in a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Text(String),
    Number(Decimal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Field(String),
    Literal(Literal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    In {
        key: String,
        values: Vec<Literal>,
        negated: bool,
    },
    Like {
        key: String,
        pattern: String,
        negated: bool,
    },
    IsNull {
        key: String,
        negated: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(Decimal),
    Op(Op),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            tokens.push(Token::Open);
            i += 1;
        } else if c == ')' {
            tokens.push(Token::Close);
            i += 1;
        } else if c == ',' {
            tokens.push(Token::Comma);
            i += 1;
        } else if c == '\'' || ((c == 'N' || c == 'n') && chars.get(i + 1) == Some(&'\'')) {
            i += if c == '\'' { 1 } else { 2 };
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("字符串未结束：{text}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Text(value));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|next| next.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|next| next.is_ascii_digit() || *next == '.')
            {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            let value =
                parse_decimal(&number).ok_or_else(|| format!("无法识别的数字“{number}”"))?;
            tokens.push(Token::Number(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|next| next.is_alphanumeric() || *next == '_' || *next == '.')
            {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match (two.as_str(), c) {
                ("<>", _) | ("!=", _) => (Op::Ne, 2),
                (">=", _) => (Op::Ge, 2),
                ("<=", _) => (Op::Le, 2),
                ("==", _) => (Op::Eq, 2),
                (_, '=') => (Op::Eq, 1),
                (_, '<') => (Op::Lt, 1),
                (_, '>') => (Op::Gt, 1),
                _ => return Err(format!("无法识别的字符“{c}”")),
            };
            tokens.push(Token::Op(op));
            i += len;
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

fn is_keyword(token: Option<&Token>, keyword: &str) -> bool {
    matches!(token, Some(Token::Ident(word)) if word.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        if is_keyword(self.peek(), keyword) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.position += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                _ => Err("缺少右括号“)”".to_string()),
            };
        }
        self.predicate()
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Token::Ident(word))
                if ["and", "or", "not", "in", "like", "is", "null"]
                    .iter()
                    .any(|keyword| word.eq_ignore_ascii_case(keyword)) =>
            {
                Err(format!("“{word}”的位置不正确"))
            }
            Some(Token::Ident(key)) => Ok(Operand::Field(key)),
            Some(Token::Text(text)) => Ok(Operand::Literal(Literal::Text(text))),
            Some(Token::Number(number)) => Ok(Operand::Literal(Literal::Number(number))),
            Some(other) => Err(format!("此处需要字段或值，却是{other:?}")),
            None => Err("条件不完整".to_string()),
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.operand()? {
            Operand::Literal(literal) => Ok(literal),
            Operand::Field(key) => Err(format!("此处需要值，却是字段“{key}”")),
        }
    }

    fn predicate(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        let key = match &left {
            Operand::Field(key) => Some(key.clone()),
            Operand::Literal(_) => None,
        };
        if let Some(key) = key {
            let negated = self.keyword("not");
            if self.keyword("in") {
                if self.next() != Some(Token::Open) {
                    return Err("in 之后需要“(”".to_string());
                }
                let mut values = vec![self.literal()?];
                loop {
                    match self.next() {
                        Some(Token::Comma) => values.push(self.literal()?),
                        Some(Token::Close) => break,
                        _ => return Err("in 列表缺少“)”".to_string()),
                    }
                }
                return Ok(Expr::In {
                    key,
                    values,
                    negated,
                });
            }
            if self.keyword("like") {
                return match self.literal()? {
                    Literal::Text(pattern) => Ok(Expr::Like {
                        key,
                        pattern,
                        negated,
                    }),
                    Literal::Number(_) => Err("like 之后需要字符串".to_string()),
                };
            }
            if negated {
                return Err("not 之后需要 in 或 like".to_string());
            }
            if self.keyword("is") {
                let negated = self.keyword("not");
                if !self.keyword("null") {
                    return Err("is 之后需要 null".to_string());
                }
                return Ok(Expr::IsNull { key, negated });
            }
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            _ => return Err("缺少比较运算符".to_string()),
        };
        let right = self.operand()?;
        Ok(Expr::Compare(left, op, right))
    }
}

/// Parse a filter string; an empty one filters nothing (`None`). Errors are the detail of
/// the `GetRealExpress error` message.
pub fn parse(text: &str) -> Result<Option<Expr>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens: tokenize(text)?,
        position: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(Some(expr)),
        Some(token) => Err(format!("多余的内容：{token:?}")),
    }
}

/// Rewrite the array form into the string form.
pub fn conditions_to_string(conditions: &[Value]) -> Result<String, String> {
    let mut text = String::new();
    let mut pending_logic: Option<&str> = None;
    for condition in conditions {
        let Value::Object(condition) = condition else {
            return Err("过滤条件数组的元素必须是对象".to_string());
        };
        let get = |key: &str| {
            condition
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .and_then(|(_, value)| scalar_text(value))
                .unwrap_or_default()
        };
        let field = get("FieldName");
        if field.trim().is_empty() {
            return Err("过滤条件缺少FieldName".to_string());
        }
        let op = match get("Compare").trim() {
            "67" => "=",
            other => return Err(format!("不支持的比较符Compare={other}")),
        };
        if let Some(logic) = pending_logic {
            text.push_str(logic);
        }
        text.push_str(&format!(
            " {} {field} {op} '{}' {} ",
            get("Left"),
            get("Value").replace('\'', "''"),
            get("Right")
        ));
        pending_logic = Some(if get("Logic").trim() == "1" {
            "or"
        } else {
            "and"
        });
    }
    Ok(text.trim().to_string())
}

impl Expr {
    /// Every field key the filter mentions.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        self.collect_keys(&mut keys);
        keys
    }

    fn collect_keys<'a>(&'a self, keys: &mut Vec<&'a str>) {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect_keys(keys);
                b.collect_keys(keys);
            }
            Expr::Not(inner) => inner.collect_keys(keys),
            Expr::Compare(left, _, right) => {
                for operand in [left, right] {
                    if let Operand::Field(key) = operand {
                        keys.push(key);
                    }
                }
            }
            Expr::In { key, .. } | Expr::Like { key, .. } | Expr::IsNull { key, .. } => {
                keys.push(key)
            }
        }
    }

    /// Evaluate against one row; `value` yields a key's value.
    pub fn matches(&self, value: &dyn Fn(&str) -> Scalar) -> bool {
        match self {
            Expr::And(a, b) => a.matches(value) && b.matches(value),
            Expr::Or(a, b) => a.matches(value) || b.matches(value),
            Expr::Not(inner) => !inner.matches(value),
            Expr::Compare(left, op, right) => {
                let ordering = match (left, right) {
                    (Operand::Field(key), Operand::Literal(literal)) => {
                        compare(&value(key), literal)
                    }
                    (Operand::Literal(literal), Operand::Field(key)) => {
                        compare(&value(key), literal).map(Ordering::reverse)
                    }
                    (Operand::Field(a), Operand::Field(b)) => compare_scalars(&value(a), &value(b)),
                    (Operand::Literal(a), Operand::Literal(b)) => compare_literals(a, b),
                };
                ordering.is_some_and(|ordering| match op {
                    Op::Eq => ordering == Ordering::Equal,
                    Op::Ne => ordering != Ordering::Equal,
                    Op::Lt => ordering == Ordering::Less,
                    Op::Le => ordering != Ordering::Greater,
                    Op::Gt => ordering == Ordering::Greater,
                    Op::Ge => ordering != Ordering::Less,
                })
            }
            Expr::In {
                key,
                values,
                negated,
            } => {
                let cell = value(key);
                if cell == Scalar::Null {
                    return false;
                }
                let found = values
                    .iter()
                    .any(|literal| compare(&cell, literal) == Some(Ordering::Equal));
                found != *negated
            }
            Expr::Like {
                key,
                pattern,
                negated,
            } => match value(key) {
                Scalar::Text(text) => like(&text, pattern) != *negated,
                _ => false,
            },
            Expr::IsNull { key, negated } => {
                let null = matches!(value(key), Scalar::Null)
                    || matches!(value(key), Scalar::Text(text) if text.is_empty());
                null != *negated
            }
        }
    }
}

fn literal_decimal(literal: &Literal) -> Option<Decimal> {
    match literal {
        Literal::Number(number) => Some(*number),
        Literal::Text(text) => parse_decimal(text),
    }
}

fn literal_date(literal: &Literal) -> Option<NaiveDateTime> {
    let Literal::Text(text) = literal else {
        return None;
    };
    crate::time::parse_instant(text).ok().map(|instant| {
        // Kingdee dates are naive wall-clock values: undo the Shanghai interpretation.
        instant.with_timezone(&crate::time::SHANGHAI).naive_local()
    })
}

/// SQL-like comparison of a row value with a literal; `None` when they cannot be compared
/// (NULL, or text that is not a number compared with a number).
fn compare(cell: &Scalar, literal: &Literal) -> Option<Ordering> {
    match cell {
        Scalar::Null => None,
        Scalar::Integer(integer) => {
            literal_decimal(literal).map(|d| Decimal::from(*integer).cmp(&d))
        }
        Scalar::Decimal(decimal) => literal_decimal(literal).map(|d| decimal.cmp(&d)),
        Scalar::Text(text) => match literal {
            Literal::Text(other) => Some(text.as_str().cmp(other.as_str())),
            Literal::Number(number) => parse_decimal(text).map(|d| d.cmp(number)),
        },
        Scalar::Date(date) => literal_date(literal).map(|other| date.cmp(&other)),
        Scalar::Bool(flag) => {
            let other = match literal {
                Literal::Number(number) => Some(!number.is_zero()),
                Literal::Text(text) => match text.to_ascii_lowercase().as_str() {
                    "1" | "true" => Some(true),
                    "0" | "false" => Some(false),
                    _ => None,
                },
            };
            other.map(|other| flag.cmp(&other))
        }
    }
}

fn compare_scalars(a: &Scalar, b: &Scalar) -> Option<Ordering> {
    let literal = match b {
        Scalar::Null => return None,
        Scalar::Integer(integer) => Literal::Number(Decimal::from(*integer)),
        Scalar::Decimal(decimal) => Literal::Number(*decimal),
        Scalar::Text(text) => Literal::Text(text.clone()),
        Scalar::Date(date) => Literal::Text(date.format("%Y-%m-%d %H:%M:%S").to_string()),
        Scalar::Bool(flag) => Literal::Number(Decimal::from(*flag as i64)),
    };
    compare(a, &literal)
}

fn compare_literals(a: &Literal, b: &Literal) -> Option<Ordering> {
    match (a, b) {
        (Literal::Text(a), Literal::Text(b)) => Some(a.cmp(b)),
        _ => Some(literal_decimal(a)?.cmp(&literal_decimal(b)?)),
    }
}

/// SQL `LIKE` with `%` and `_`.
fn like(text: &str, pattern: &str) -> bool {
    fn go(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|skip| go(&text[skip..], rest)),
            Some(('_', rest)) => !text.is_empty() && go(&text[1..], rest),
            Some((c, rest)) => text.first() == Some(c) && go(&text[1..], rest),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    go(&text, &pattern)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use serde_json::json;

    use super::*;

    fn row(key: &str) -> Scalar {
        match key.to_ascii_lowercase().as_str() {
            "fid" => Scalar::Integer(100002),
            "fbillno" => Scalar::Text("RT-2".into()),
            "fdate" => Scalar::Date(
                NaiveDate::from_ymd_opt(2024, 3, 1)
                    .unwrap()
                    .and_hms_opt(0, 0, 0)
                    .unwrap(),
            ),
            "frealqty" => Scalar::Decimal(Decimal::new(25, 1)),
            "fdocumentstatus" => Scalar::Text("C".into()),
            "fmaterialid.fnumber" => Scalar::Text("TX-RED-M".into()),
            "fheadnote" => Scalar::Null,
            _ => panic!("unknown key {key}"),
        }
    }

    fn check(filter: &str, expected: bool) {
        let expr = parse(filter)
            .unwrap_or_else(|err| panic!("{filter}: {err}"))
            .unwrap();
        assert_eq!(expr.matches(&row), expected, "{filter}");
    }

    #[test]
    fn string_filters_evaluate_like_sql() {
        for (filter, expected) in [
            ("FBillNo='RT-2'", true),
            ("FBillNo = 'RT-3'", false),
            ("FBillNo=N'RT-2'", true),
            ("FID=100002", true),
            ("FID = '100002'", true),
            ("FID>=100002 and FID<=100002", true),
            ("FID>100002", false),
            ("FID<>100002", false),
            ("FID!=1", true),
            ("FBillNo in ('RT-1','RT-2')", true),
            ("FBillNo not in ('RT-1','RT-2')", false),
            ("FID in (1, 2, 100002)", true),
            ("FDate>='2024-03-01' and FDate<'2024-03-02'", true),
            ("FDate>='2024-03-01 00:00:01'", false),
            ("FRealQty = 2.5", true),
            ("FRealQty > '2'", true),
            ("FBillNo='X' or FDocumentStatus='C'", true),
            ("FBillNo='X' or FDocumentStatus='C' and FID=1", false),
            ("(FBillNo='X' or FDocumentStatus='C') and FID=100002", true),
            ("not FBillNo='X'", true),
            ("FMaterialId.FNumber like 'TX-%'", true),
            ("FMaterialId.FNumber like 'TX-___-_'", true),
            ("FMaterialId.FNumber not like 'WY%'", true),
            ("FHeadNote is null", true),
            ("FHeadNote is not null", false),
            ("FHeadNote = ''", false),
            ("1=1", true),
            ("1=1 AND FBillNo='RT-2'", true),
            ("FBillNo='it''s'", false),
        ] {
            check(filter, expected);
        }
    }

    #[test]
    fn malformed_filters_are_errors() {
        for filter in [
            "FBillNo=",
            "FBillNo='RT-1",
            "FBillNo 'RT-1'",
            "(FBillNo='RT-1'",
            "FBillNo in 'RT-1'",
            "FBillNo in ('RT-1'",
            "FBillNo='a' and",
            "FBillNo='a' FID=1",
            "FBillNo = 'a' ; drop table",
            "and FID=1",
        ] {
            assert!(parse(filter).is_err(), "{filter}");
        }
        assert_eq!(parse("  ").unwrap(), None);
    }

    #[test]
    fn keys_lists_every_field_mentioned() {
        let expr = parse("FBillNo='a' and (FID>1 or FMaterialId.FNumber in ('x'))")
            .unwrap()
            .unwrap();
        assert_eq!(expr.keys(), vec!["FBillNo", "FID", "FMaterialId.FNumber"]);
    }

    #[test]
    fn the_array_form_becomes_the_string_form() {
        let conditions = json!([
            {"Left": "(", "FieldName": "FBillNo", "Compare": "67", "Value": "RT-1", "Right": "", "Logic": "1"},
            {"Left": "", "FieldName": "FBillNo", "Compare": 67, "Value": "RT-2", "Right": ")", "Logic": "0"},
            {"Left": "", "FieldName": "FDocumentStatus", "Compare": "67", "Value": "C", "Right": "", "Logic": "0"}
        ]);
        let text = conditions_to_string(conditions.as_array().unwrap()).unwrap();
        check(&text, true);
        let unknown = json!([{"FieldName": "FBillNo", "Compare": "12", "Value": "x"}]);
        assert_eq!(
            conditions_to_string(unknown.as_array().unwrap()).unwrap_err(),
            "不支持的比较符Compare=12"
        );
    }
}
