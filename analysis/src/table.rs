//! Tables as data, rendered five ways: aligned text for the terminal, Markdown and LaTeX
//! (booktabs) for papers, CSV for spreadsheets and JSON for scripts. Every command builds
//! `Table`s and never formats by hand, so the five outputs always agree.

use serde_json::{json, Map, Value};
use std::fmt::Write;

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Free text (labels, prefixes, flags).
    Text(String),
    /// A count; shown with thousands separators on the terminal.
    Int(u64),
    /// A percentage (0-100), or nothing when its denominator is unknown or zero.
    Pct(Option<f64>),
    /// Nothing to show (for example addresses probed without metadata).
    Empty,
}

impl Cell {
    /// Text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    /// Share of `n` in `of`, empty if `of` is zero.
    pub fn pct(n: u64, of: u64) -> Cell {
        Cell::Pct((of > 0).then(|| 100.0 * n as f64 / of as f64))
    }
    fn human(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => thousands(*n),
            Cell::Pct(Some(p)) => format!("{p:.2}%"),
            Cell::Pct(None) | Cell::Empty => "-".into(),
        }
    }
    fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Pct(Some(p)) => format!("{p:.4}"),
            Cell::Pct(None) | Cell::Empty => String::new(),
        }
    }
    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Int(n) => json!(n),
            Cell::Pct(Some(p)) => json!((p * 10_000.0).round() / 10_000.0),
            Cell::Pct(None) | Cell::Empty => Value::Null,
        }
    }
    fn right_aligned(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A titled table with named columns and an optional note printed under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Heading.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
    /// One line of explanation (what is counted, what was left out).
    pub note: Option<String>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            title: title.into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            rows: vec![],
            note: None,
        }
    }
    /// Append a row (must have one cell per column).
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}", self.title);
        self.rows.push(row);
    }
    /// Set the note.
    pub fn with_note(mut self, note: impl Into<String>) -> Table {
        self.note = Some(note.into());
        self
    }
    /// Column index by name (tests and charts read tables back).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
    /// The row whose first cell is the text `label`.
    pub fn row(&self, label: &str) -> Option<&[Cell]> {
        self.rows.iter().find(|r| matches!(r.first(), Some(Cell::Text(t)) if t.trim() == label)).map(|r| &r[..])
    }
    /// Integer at (row labelled `label`, column `col`), for tests and charts.
    pub fn int(&self, label: &str, col: &str) -> Option<u64> {
        match self.row(label)?.get(self.col(col)?)? {
            Cell::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// Output format chosen with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for the terminal.
    Text,
    /// GitHub-flavoured Markdown tables.
    Markdown,
    /// One CSV block per table, separated by blank lines.
    Csv,
    /// `{"tables": [{"title", "columns", "rows": [{column: value}], "note"}]}`.
    Json,
    /// One LaTeX `table` per table, with booktabs rules (`\usepackage{booktabs}`), for papers.
    Latex,
}

/// Render tables in the chosen format.
pub fn render(tables: &[Table], format: Format) -> String {
    match format {
        Format::Text => tables.iter().map(render_text).collect::<Vec<_>>().join("\n"),
        Format::Markdown => tables.iter().map(render_markdown).collect::<Vec<_>>().join("\n"),
        Format::Csv => tables.iter().map(render_csv).collect::<Vec<_>>().join("\n"),
        Format::Latex => tables.iter().map(render_latex).collect::<Vec<_>>().join("\n"),
        Format::Json => {
            let arr: Vec<Value> = tables
                .iter()
                .map(|t| {
                    let rows: Vec<Value> = t
                        .rows
                        .iter()
                        .map(|r| {
                            let mut m = Map::new();
                            for (c, v) in t.columns.iter().zip(r) {
                                m.insert(c.clone(), v.json());
                            }
                            Value::Object(m)
                        })
                        .collect();
                    json!({"title": t.title, "columns": t.columns, "rows": rows, "note": t.note})
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&json!({ "tables": arr })).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

fn widths(t: &Table, cell: impl Fn(&Cell) -> String) -> (Vec<usize>, Vec<Vec<String>>) {
    let cells: Vec<Vec<String>> = t.rows.iter().map(|r| r.iter().map(&cell).collect()).collect();
    let mut w: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    (w, cells)
}

fn right_cols(t: &Table) -> Vec<bool> {
    (0..t.columns.len())
        .map(|i| {
            let mut any = false;
            for r in &t.rows {
                match &r[i] {
                    Cell::Text(_) => return false,
                    c => any |= c.right_aligned(),
                }
            }
            any
        })
        .collect()
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let n = s.chars().count();
    let fill = " ".repeat(w.saturating_sub(n));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn render_text(t: &Table) -> String {
    let (w, cells) = widths(t, Cell::human);
    let right = right_cols(t);
    let mut out = String::new();
    let _ = writeln!(out, "{}", t.title);
    let line = |cols: &[String]| -> String {
        let parts: Vec<String> = cols.iter().enumerate().map(|(i, c)| pad(c, w[i], right[i])).collect();
        parts.join("  ").trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&t.columns));
    let _ = writeln!(out, "{}", w.iter().map(|n| "-".repeat(*n)).collect::<Vec<_>>().join("  "));
    if cells.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    for r in &cells {
        let _ = writeln!(out, "{}", line(r));
    }
    if let Some(n) = &t.note {
        let _ = writeln!(out, "{n}");
    }
    out
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn render_markdown(t: &Table) -> String {
    let (_, cells) = widths(t, Cell::human);
    let right = right_cols(t);
    let mut out = format!("### {}\n\n", md_escape(&t.title));
    let _ = writeln!(out, "| {} |", t.columns.iter().map(|c| md_escape(c)).collect::<Vec<_>>().join(" | "));
    let _ = writeln!(out, "|{}|", right.iter().map(|r| if *r { "---:" } else { ":---" }).collect::<Vec<_>>().join("|"));
    for r in &cells {
        // Leading spaces (indentation on the terminal) mean nothing in Markdown: use non-breaking ones.
        let r: Vec<String> = r.iter().map(|c| md_escape(&indent_nbsp(c))).collect();
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    if let Some(n) = &t.note {
        let _ = writeln!(out, "\n{}", md_escape(n));
    }
    out
}

fn indent_nbsp(s: &str) -> String {
    let n = s.len() - s.trim_start_matches(' ').len();
    format!("{}{}", "&nbsp;".repeat(n), &s[n..])
}

fn render_csv(t: &Table) -> String {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(vec![]);
    let _ = w.write_record([t.title.as_str()]);
    let _ = w.write_record(&t.columns);
    for r in &t.rows {
        let _ = w.write_record(r.iter().map(|c| c.plain().trim().to_string()));
    }
    // The note (what was counted, which enrichment files) as a last one-field record, like the title.
    if let Some(n) = &t.note {
        let _ = w.write_record([format!("note: {n}")]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// `s` with LaTeX's special characters escaped for text mode.
fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '|' => out.push_str("\\textbar{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            c => out.push(c),
        }
    }
    out
}

/// A cell as LaTeX: the terminal's text escaped, its indentation as `\quad`s (two spaces each),
/// and an unknown value as an en dash.
fn tex_cell(c: &Cell) -> String {
    if matches!(c, Cell::Pct(None) | Cell::Empty) {
        return "--".into();
    }
    let h = c.human();
    let n = h.len() - h.trim_start_matches(' ').len();
    format!("{}{}", "\\quad ".repeat(n.div_ceil(2)), tex_escape(&h[n..]))
}

fn render_latex(t: &Table) -> String {
    let right = right_cols(t);
    let spec: String = right.iter().map(|r| if *r { 'r' } else { 'l' }).collect();
    let mut out = String::new();
    let _ = writeln!(out, "\\begin{{table}}[htbp]\n\\centering\n\\caption{{{}}}", tex_escape(&t.title));
    let _ = writeln!(out, "\\begin{{tabular}}{{{spec}}}\n\\toprule");
    let _ =
        writeln!(out, "{} \\\\\n\\midrule", t.columns.iter().map(|c| tex_escape(c)).collect::<Vec<_>>().join(" & "));
    for r in &t.rows {
        let _ = writeln!(out, "{} \\\\", r.iter().map(tex_cell).collect::<Vec<_>>().join(" & "));
    }
    let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}");
    if let Some(n) = &t.note {
        let _ = writeln!(out, "\\par\\smallskip{{\\footnotesize {}}}", tex_escape(n));
    }
    let _ = writeln!(out, "\\end{{table}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("Classes", &["class", "count", "share"]);
        t.push(vec![Cell::text("mptcp"), Cell::Int(11_100), Cell::pct(11_100, 88_484)]);
        t.push(vec![Cell::text("  echo | box"), Cell::Int(77_384), Cell::pct(1, 0)]);
        t.with_note("note")
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(3_702_258_432), "3,702,258,432");
    }

    #[test]
    fn text_is_aligned() {
        let s = render(&[sample()], Format::Text);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "Classes");
        assert_eq!(lines[1], "class          count   share");
        assert_eq!(lines[3], "mptcp         11,100  12.54%");
        assert_eq!(lines[4], "  echo | box  77,384       -");
        assert_eq!(lines[5], "note");
    }

    #[test]
    fn latex_is_booktabs_with_everything_escaped() {
        let mut t = sample();
        t.push(vec![Cell::text("50% of AS#3_{x} & ~^\\"), Cell::Empty, Cell::pct(1, 4)]);
        let tex = render(&[t], Format::Latex);
        let want = "\\begin{table}[htbp]\n\\centering\n\\caption{Classes}\n\\begin{tabular}{lrr}\n\\toprule\n\
                    class & count & share \\\\\n\\midrule\n\
                    mptcp & 11,100 & 12.54\\% \\\\\n\
                    \\quad echo \\textbar{} box & 77,384 & -- \\\\\n\
                    50\\% of AS\\#3\\_\\{x\\} \\& \\textasciitilde{}\\textasciicircum{}\\textbackslash{} & -- & 25.00\\% \\\\\n\
                    \\bottomrule\n\\end{tabular}\n\\par\\smallskip{\\footnotesize note}\n\\end{table}\n";
        assert_eq!(tex, want);
    }

    #[test]
    fn markdown_csv_json() {
        let md = render(&[sample()], Format::Markdown);
        assert!(md.contains("| class | count | share |\n|:---|---:|---:|\n| mptcp | 11,100 | 12.54% |"), "{md}");
        assert!(md.contains("&nbsp;&nbsp;echo \\| box"), "{md}");
        let c = render(&[sample()], Format::Csv);
        assert_eq!(c, "Classes\nclass,count,share\nmptcp,11100,12.5446\necho | box,77384,\nnote: note\n");
        let j: Value = serde_json::from_str(&render(&[sample()], Format::Json)).unwrap();
        assert_eq!(j["tables"][0]["rows"][0]["count"], json!(11100));
        assert_eq!(j["tables"][0]["rows"][1]["share"], Value::Null);
        assert_eq!(sample().int("echo | box", "count"), Some(77_384));
    }
}
