//! Embeds every language under `locales/` (one `<tag>/main.ftl` each), English first as
//! the default: adding a language is adding its file.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
    println!("cargo::rerun-if-changed={}", root.display());
    let mut tags: Vec<String> = std::fs::read_dir(&root)
        .expect("the locales directory")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let tag = entry.file_name().into_string().ok()?;
            entry.path().join("main.ftl").is_file().then_some(tag)
        })
        .collect();
    tags.sort_by_key(|tag| (tag != "en", tag.clone()));
    assert_eq!(
        tags.first().map(String::as_str),
        Some("en"),
        "English is the default language"
    );
    let entries: String = tags
        .iter()
        .map(|tag| {
            let file = root.join(tag).join("main.ftl");
            println!("cargo::rerun-if-changed={}", file.display());
            format!(
                "    ({tag:?}, include_str!({:?})),\n",
                file.display().to_string()
            )
        })
        .collect();
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("locales.rs");
    std::fs::write(out, format!("&[\n{entries}]\n")).expect("writing locales.rs");
}
