//! `datapackage.json`: the Camtrap DP 1.0.2 profile's required metadata, from the tables.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::tables::Tables;
use super::ExportOptions;
use crate::taxonomy::{Rank, Taxonomy};

/// The Camtrap DP version written.
pub const CAMTRAP_DP_VERSION: &str = "1.0.2";

fn schema_url(file: &str) -> String {
    format!("https://raw.githubusercontent.com/tdwg/camtrap-dp/{CAMTRAP_DP_VERSION}/{file}")
}

/// The descriptor of the package holding `tables`.
pub fn descriptor(tables: &Tables, options: &ExportOptions) -> Value {
    let ids: Vec<&str> = tables
        .deployments
        .iter()
        .map(|s| s.deployment.id.as_str())
        .collect();
    let name = package_name(&ids);
    json!({
        "profile": schema_url("camtrap-dp-profile.json"),
        "name": name,
        "id": name,
        "created": options.created,
        "title": format!("xrvlm detections: {}", ids.join(", ")),
        "contributors": [{"title": options.contributor, "role": "contributor"}],
        "licenses": [
            {"name": "CC0-1.0", "path": "https://creativecommons.org/publicdomain/zero/1.0/", "scope": "data"},
            {"name": "CC-BY-4.0", "path": "https://creativecommons.org/licenses/by/4.0/", "scope": "media"}
        ],
        "project": {
            "title": options.project_title,
            "samplingDesign": "opportunistic",
            "captureMethod": ["activityDetection", "timeLapse"],
            "individualAnimals": false,
            "observationLevel": ["media", "event"]
        },
        "spatial": spatial(tables),
        "temporal": temporal(tables, &options.created),
        "taxonomic": taxonomic(tables),
        "resources": resources(),
    })
}

/// The three tables as tabular data resources with their schema URLs.
fn resources() -> Vec<Value> {
    ["deployments", "media", "observations"]
        .iter()
        .map(|table| {
            json!({
                "name": table,
                "path": format!("{table}.csv"),
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": schema_url(&format!("{table}-table-schema.json")),
            })
        })
        .collect()
}

/// A Frictionless package name (`^[a-z0-9._-]+$`) from the deployment ids.
fn package_name(ids: &[&str]) -> String {
    let joined = format!("xrvlm-{}", ids.join("-")).to_ascii_lowercase();
    joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// GeoJSON of the deployments: a point, or several.
fn spatial(tables: &Tables) -> Value {
    let points: Vec<Value> = tables
        .deployments
        .iter()
        .map(|s| json!([s.deployment.longitude, s.deployment.latitude]))
        .collect();
    match points.as_slice() {
        [one] => json!({"type": "Point", "coordinates": one}),
        _ => json!({"type": "MultiPoint", "coordinates": points}),
    }
}

/// First and last local date of the deployments.
fn temporal(tables: &Tables, created: &str) -> Value {
    let dates: Vec<String> = tables
        .deployments
        .iter()
        .flat_map(|s| {
            let (start, end) = s.range(created);
            [start, end]
        })
        .map(|t| t.chars().take(10).collect())
        .collect();
    let fallback = created.chars().take(10).collect::<String>();
    json!({
        "start": dates.iter().min().unwrap_or(&fallback),
        "end": dates.iter().max().unwrap_or(&fallback),
    })
}

/// The bundle's classes except the blank one (`taxonRank` species, with the ranks above where
/// the bundle has a taxonomy), then every taxon above them that a roll-up may answer, once,
/// finest rank first, each with its `taxonRank` and the ranks above it.
fn taxonomic(tables: &Tables) -> Value {
    let Some(classes) = &tables.classes else {
        return json!([]);
    };
    let animals = || {
        classes
            .classes
            .iter()
            .filter(|c| c.label != classes.blank_label)
    };
    let mut taxa: Vec<Value> = animals()
        .map(|c| {
            let mut taxon = json!({"scientificName": classes.scientific_name(&c.label)});
            if let Some(taxonomy) = &c.taxonomy {
                taxon["taxonRank"] = json!("species");
                add_ranks(&mut taxon, taxonomy, None);
            }
            if let Some(common) = &c.common_name {
                taxon["vernacularNames"] = json!({"eng": common});
            }
            taxon
        })
        .collect();
    for rank in Rank::ALL {
        let mut seen = BTreeSet::new();
        for taxonomy in animals().filter_map(|c| c.taxonomy.as_ref()) {
            let Some(name) = taxonomy.at(rank) else {
                continue;
            };
            if seen.insert(name) {
                let mut taxon = json!({"scientificName": name, "taxonRank": rank.as_str()});
                add_ranks(&mut taxon, taxonomy, Some(rank));
                taxa.push(taxon);
            }
        }
    }
    Value::Array(taxa)
}

/// The ranks of `taxonomy` coarser than `rank` (all of them for a species, `None`) as the
/// Camtrap DP taxonomic fields (`genus`, `family`, `order`, `class`).
fn add_ranks(taxon: &mut Value, taxonomy: &Taxonomy, rank: Option<Rank>) {
    for above in Rank::ALL
        .into_iter()
        .filter(|&r| rank.is_none_or(|rank| r > rank))
    {
        if let Some(name) = taxonomy.at(above) {
            taxon[above.as_str()] = json!(name);
        }
    }
}
