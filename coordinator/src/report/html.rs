//! HTML pieces of the report: escaping, tables (plain and heat map), the class legend,
//! and the page around the sections (inline CSS, and a small inline script that records
//! script errors and images that fail to load in `data-report-*` attributes of
//! `<body>`, for the headless-browser test). No external resources.

use std::fmt::Write;

use super::svg::fmt_num;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// One class of the legend.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    /// Class name.
    pub name: String,
    /// CSS colour.
    pub color: String,
}

/// The class legend: a colour swatch and the name of every class.
pub fn legend(entries: &[LegendEntry]) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for e in entries {
        let _ = write!(
            s,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            esc(&e.color),
            esc(&e.name)
        );
    }
    s.push_str("</ul>");
    s
}

/// A cell as a number when it parses (thousands separators, right-aligned), else text.
fn cell(v: &str, decimals: Option<usize>) -> String {
    // a count as the CSV writes it (no point, no exponent) keeps no decimals
    let count = !v.contains(['.', 'e', 'E']) && v.parse::<i64>().is_ok();
    match (v.parse::<f64>(), decimals) {
        (Ok(x), Some(_)) if count => format!("<td class=\"num\">{}</td>", fmt_num(x)),
        (Ok(x), Some(d)) => format!("<td class=\"num\">{x:.d$}</td>"),
        (Ok(x), None) if x.fract() == 0.0 && x.abs() < 1e15 => {
            format!("<td class=\"num\">{}</td>", fmt_num(x))
        }
        (Ok(x), None) => format!("<td class=\"num\">{}</td>", fmt_num(x)),
        _ => format!("<td>{}</td>", esc(v)),
    }
}

/// A table of `header` and `rows`; numbers with `decimals` decimals (or grouped
/// thousands when `None`); `first` renders the first cell of a row (e.g. a swatch).
pub fn table(
    header: &[String],
    rows: &[Vec<String>],
    decimals: Option<usize>,
    first: impl Fn(&str) -> String,
    row_class: impl Fn(&[String]) -> &'static str,
) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in rows {
        let _ = write!(s, "<tr class=\"{}\">", row_class(r));
        for (i, v) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "<th scope=\"row\">{}</th>", first(v));
            } else {
                s.push_str(&cell(v, decimals));
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// Background of a heat-map cell: `t` in [0, 1] from pale to deep blue (ColorBrewer
/// Blues end points), with a text colour that stays readable.
pub fn heat(t: f64) -> (String, &'static str) {
    let lo = [0xf7, 0xfb, 0xff];
    let hi = [0x08, 0x30, 0x6b];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let c: Vec<u8> = lo
        .iter()
        .zip(hi)
        .map(|(&a, b)| (a as f64 + (b as f64 - a as f64) * t).round() as u8)
        .collect();
    (
        format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]),
        if t > 0.55 { "#fff" } else { "#111" },
    )
}

/// A heat-map table: numeric cells coloured by value between the table's minimum and
/// maximum, with a caption of that range; the cells for which `marked(row, column)`
/// holds (column 0 the row header) carry a dagger and the class `ns` (struck through,
/// for "not significant").
pub fn heat_table_marked(
    header: &[String],
    rows: &[Vec<String>],
    first: impl Fn(&str) -> String,
    marked: impl Fn(usize, usize) -> bool,
) -> String {
    let vals: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.iter().skip(1).filter_map(|v| v.parse::<f64>().ok()))
        .collect();
    let lo = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut s = String::from("<table class=\"heat\"><thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for (ri, r) in rows.iter().enumerate() {
        s.push_str("<tr>");
        for (i, v) in r.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, "<th scope=\"row\">{}</th>", first(v));
                continue;
            }
            match v.parse::<f64>() {
                Ok(x) => {
                    let t = if hi > lo { (x - lo) / (hi - lo) } else { 1.0 };
                    let (bg, fg) = heat(t);
                    let (class, dagger) = if marked(ri, i) {
                        ("num ns", "†")
                    } else {
                        ("num", "")
                    };
                    let _ = write!(
                        s,
                        "<td class=\"{class}\" style=\"background:{bg};color:{fg}\">{x:.3}{dagger}</td>"
                    );
                }
                Err(_) => {
                    let _ = write!(s, "<td>{}</td>", esc(v));
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    if lo.is_finite() {
        let (a, _) = heat(0.0);
        let (b, _) = heat(1.0);
        let _ = write!(
            s,
            "<p class=\"note\"><span class=\"ramp-swatch\" style=\"background:linear-gradient(90deg,{a},{b})\"></span> {lo:.3} to {hi:.3}</p>"
        );
    }
    s
}

/// The script that records failures for automated checks: every script error and
/// every image that does not load ends up in `data-report-errors`, the image count in
/// `data-report-images`, and `data-report-status` becomes `ok` or `error` at `load`.
const CHECK_SCRIPT: &str = r#"<script>
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t.tagName === 'IMG') { errors.push('image failed: ' + t.getAttribute('src')); }
    else { errors.push('script error: ' + (e.message || 'unknown')); }
  }, true);
  window.addEventListener('load', function () {
    var imgs = document.images;
    for (var i = 0; i < imgs.length; i++) {
      var m = 'image failed: ' + imgs[i].getAttribute('src');
      if ((!imgs[i].complete || imgs[i].naturalWidth === 0) && errors.indexOf(m) < 0) { errors.push(m); }
    }
    var b = document.body;
    b.setAttribute('data-report-images', String(imgs.length));
    b.setAttribute('data-report-errors', errors.join(' | '));
    b.setAttribute('data-report-status', errors.length ? 'error' : 'ok');
  });
})();
</script>"#;

const CSS: &str = r#"
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff; --accent:#0b5394; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header.top { background:linear-gradient(120deg,#0b3d6b,#0b5394 60%,#1c7c54); color:#fff; padding:26px 0 22px; }
.wrap { max-width:1240px; margin:0 auto; padding:0 24px; }
header.top h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:.2px; }
header.top p { margin:0; opacity:.9; }
.facts { display:flex; flex-wrap:wrap; gap:8px 22px; margin-top:14px; font-size:12.5px; opacity:.95; }
.facts b { font-weight:600; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; margin:22px 0; padding:18px 22px 20px;
  box-shadow:0 1px 2px rgba(16,24,40,.04); }
h2 { font-size:18px; margin:0 0 4px; color:#102a43; }
h3 { font-size:14px; margin:0 0 8px; color:#334e68; }
p.lead { margin:0 0 14px; color:var(--muted); }
p.note { color:var(--muted); font-size:12.5px; margin:8px 0 0; }
.maps { display:flex; flex-wrap:wrap; gap:14px; }
.maps.strip { flex-wrap:nowrap; overflow-x:auto; padding-bottom:6px; }
figure.map { margin:0; padding:10px; border:1px solid var(--line); border-radius:8px; background:#fbfcfd; }
figure.map img { display:block; background:#fff; border:1px solid #d9dee4; image-rendering:pixelated; }
figure.map figcaption { font-weight:600; margin:0 0 8px; color:#243b53; }
figure.map figcaption small { font-weight:400; color:var(--muted); }
ul.legend { list-style:none; padding:0; margin:6px 0 0; display:flex; flex-wrap:wrap; gap:4px 12px; font-size:12.5px; }
ul.legend li { display:flex; align-items:center; gap:5px; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; border:1px solid rgba(0,0,0,.25); vertical-align:-1px; margin-right:6px; }
svg.scale, svg.ramp { display:block; margin-top:6px; }
.charts { display:flex; flex-wrap:wrap; gap:20px; align-items:flex-start; }
table { border-collapse:collapse; font-size:13px; margin-top:4px; }
th, td { padding:5px 12px; border-bottom:1px solid var(--line); text-align:left; white-space:nowrap; }
thead th { background:#f0f4f8; color:#334e68; font-weight:600; border-bottom:2px solid #d9e2ec; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.ns { text-decoration:line-through; text-decoration-color:rgba(200,0,0,.7); }
tbody th { font-weight:600; }
tr.hl td, tr.hl th { background:#eef6ff; }
table.heat td { min-width:78px; border:2px solid #fff; }
.ramp-swatch { display:inline-block; width:90px; height:10px; border-radius:2px; vertical-align:middle; border:1px solid #ccd; }
.ok { color:#1c7c54; font-weight:600; } .bad { color:#b42318; font-weight:600; }
footer { color:var(--muted); font-size:12px; padding:6px 0 30px; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
"#;

/// The whole page: title, header block and sections (already HTML).
pub fn page(title: &str, header: &str, sections: &[String], footer: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style>{CHECK_SCRIPT}</head><body>\
         <header class=\"top\"><div class=\"wrap\">{header}</div></header><main class=\"wrap\">",
        esc(title)
    );
    for sec in sections {
        s.push_str(sec);
    }
    let _ = writeln!(
        s,
        "</main><footer class=\"wrap\">{footer}</footer></body></html>"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_keep_no_decimals_beside_three_decimal_metrics() {
        let h = vec!["map".to_string(), "oa".into(), "hits".into()];
        let rows = vec![vec![
            "simulation".to_string(),
            "0.78912".into(),
            "39885".into(),
        ]];
        let t = table(&h, &rows, Some(3), |v| v.to_string(), |_| "");
        assert!(t.contains(">0.789<") && t.contains(">39,885<"), "{t}");
        assert!(!t.contains("39885.000"), "{t}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;"
        );
    }

    #[test]
    fn heat_colours_run_from_pale_to_deep_blue() {
        assert_eq!(heat(0.0), ("#f7fbff".to_string(), "#111"));
        assert_eq!(heat(1.0), ("#08306b".to_string(), "#fff"));
        // halfway: (0xf7 + 0x08) / 2 = 127.5 -> 128, (0xfb + 0x30) / 2 = 149.5 -> 150,
        // (0xff + 0x6b) / 2 = 181
        assert_eq!(heat(0.5).0, "#8096b5");
    }

    #[test]
    fn heat_tables_colour_cells_by_their_place_in_the_range() {
        let h = vec!["class".to_string(), "a".into(), "b".into()];
        let rows = vec![vec!["x".to_string(), "0.5".into(), "1.0".into()]];
        let t = heat_table_marked(&h, &rows, |v| v.to_string(), |_, c| c == 2);
        assert!(t.contains("background:#f7fbff;color:#111\">0.500"), "{t}");
        assert!(t.contains("background:#08306b;color:#fff\">1.000†"), "{t}");
    }

    #[test]
    fn the_page_loads_nothing_from_outside() {
        let p = page("t", "<h1>t</h1>", &["<section>x</section>".into()], "f");
        assert!(!p.contains("http://") && !p.contains("https://") && !p.contains("//cdn"));
        assert!(p.contains("data-report-status"));
    }
}
