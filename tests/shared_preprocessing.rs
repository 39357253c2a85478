//! Preprocessing exists once, in `xrvlm-runtime`: the training crate's loader, which feeds
//! evaluation and the fp32 reference, must produce exactly the runtime's tensors for the same
//! image files (PNG and JPEG, odd sizes, grey and alpha), and for the same boxes the same crops
//! (the crop rule of `classify --detections` and the field loop's motion region).

use std::path::Path;

use image::{DynamicImage, GrayImage, Rgb, RgbImage, RgbaImage};
use xrvlm_runtime::crop::{CropRule, NormalizedBox};
use xrvlm_runtime::image_io::load_rgb;
use xrvlm_runtime::preprocess::Preprocess;
use xrvlm_train::data::loader::{Loader, Transform};
use xrvlm_train::data::{Dataset, Sample};

fn write_images(dir: &Path) -> Vec<std::path::PathBuf> {
    let rgb = RgbImage::from_fn(301, 213, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let grey = GrayImage::from_fn(97, 150, |x, y| image::Luma([((x * y) % 251) as u8]));
    let rgba = RgbaImage::from_fn(64, 47, |x, y| {
        image::Rgba([x as u8 * 3, y as u8 * 5, 200, (x + y) as u8])
    });
    let paths = vec![
        dir.join("a.png"),
        dir.join("b.jpg"),
        dir.join("c.png"),
        dir.join("d.png"),
    ];
    rgb.save(&paths[0]).unwrap();
    DynamicImage::ImageRgb8(rgb).save(&paths[1]).unwrap();
    grey.save(&paths[2]).unwrap();
    rgba.save(&paths[3]).unwrap();
    paths
}

/// Every sample of `ds` through the training loader's evaluation transform, in order.
fn training_pixels(ds: &Dataset, pre: &Preprocess) -> Vec<f32> {
    let loader = Loader::new(ds, Transform::Eval(pre.clone()), 3, None, 0);
    let mut pixels = Vec::new();
    for batch in &loader {
        assert!(batch.failures.is_empty(), "{:?}", batch.failures);
        pixels.extend(batch.pixels);
    }
    pixels
}

#[test]
fn training_loader_sees_exactly_the_runtime_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_images(tmp.path());
    let samples = paths
        .iter()
        .map(|p| Sample {
            path: p.clone(),
            label: 0,
            region: None,
        })
        .collect();
    let ds = Dataset::new("mixed", vec!["only".into()], samples).unwrap();
    for pre in [Preprocess::xrvlm(), Preprocess::for_image_size(32)] {
        let from_training = training_pixels(&ds, &pre);
        let mut from_runtime = Vec::new();
        for p in &paths {
            from_runtime.extend(pre.apply(&load_rgb(p).unwrap()).unwrap());
        }
        assert_eq!(from_training.len(), from_runtime.len());
        let same = from_training
            .iter()
            .zip(&from_runtime)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "training and runtime preprocessing differ for {pre:?}"
        );
    }
}

#[test]
fn training_crops_are_the_runtimes_crops_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_images(tmp.path());
    // A box inside, one at an edge (the square moves inside), one tiny (the minimum side),
    // one larger than the shorter side allows.
    let boxes = [
        [0.2, 0.3, 0.25, 0.2],
        [0.8, 0.0, 0.2, 0.15],
        [0.5, 0.5, 0.01, 0.01],
        [0.0, 0.0, 1.0, 0.9],
    ]
    .map(|[x, y, w, h]| NormalizedBox::new(x, y, w, h).unwrap());
    let pairs: Vec<_> = paths
        .iter()
        .flat_map(|p| boxes.iter().map(move |b| (p.clone(), *b)))
        .collect();
    let samples = pairs
        .iter()
        .map(|(path, region)| Sample {
            path: path.clone(),
            label: 0,
            region: Some(*region),
        })
        .collect();
    let ds = Dataset::new("boxes", vec!["only".into()], samples).unwrap();
    let pre = Preprocess::for_image_size(32);
    let from_training = training_pixels(&ds, &pre);
    let mut from_runtime = Vec::new();
    for (path, region) in &pairs {
        let crop = CropRule::DETECTION.cut(&load_rgb(path).unwrap(), *region);
        from_runtime.extend(pre.apply(&crop).unwrap());
    }
    assert_eq!(from_training.len(), from_runtime.len());
    assert!(from_training
        .iter()
        .zip(&from_runtime)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // Not vacuous: the crops differ from the whole images.
    let whole = pre.apply(&load_rgb(&paths[0]).unwrap()).unwrap();
    assert_ne!(&from_runtime[..whole.len()], &whole[..]);
}
