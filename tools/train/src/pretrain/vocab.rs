//! A CLIP tokenizer for a small caption vocabulary, in the exact `tokenizer.json` format of
//! OpenAI CLIP as transformers' `convert_slow_tokenizer.CLIPConverter` writes it:
//!
//! - normalizer: NFC, whitespace runs to one space, lowercase;
//! - pre-tokenizer: CLIP's split regex (words, single digits, punctuation runs), then byte-level;
//! - model: BPE with the `</w>` end-of-word suffix and `<|endoftext|>` as the unknown token;
//! - post-processor: `<|startoftext|> … <|endoftext|>` (`RobertaProcessing`).
//!
//! The merges are learned by plain BPE on the corpus's words until no pair is left, so every
//! word of the corpus is exactly one token (the `tokenizers` crate's `BpeTrainer` would do the
//! same, but breaks ties between equally frequent pairs in hash order, which is not
//! reproducible). The vocabulary is then laid out as CLIP's is:
//! the 256 byte symbols, the same with `</w>`, the merged tokens in merge order, and the two
//! special tokens last. Because every byte symbol is present, any text still encodes (unseen
//! words fall back to smaller pieces) and the MPP placeholder `X` is the single token `x</w>`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Lowercase, NormalizerWrapper, Replace, Sequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString,
    PreTokenizer, SplitDelimiterBehavior, Tokenizer,
};

use super::PretrainError;
use crate::clip::tokenizer::{EOT, SOT};

/// MPP's placeholder word ("X X … X Name."): it must be one token.
pub const PLACEHOLDER: &str = "X";

/// CLIP's end-of-word suffix.
const END_OF_WORD: &str = "</w>";

/// CLIP's pre-tokenizer split regex, with the special tokens first (as transformers writes it).
const CLIP_SPLIT: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

fn tok_err(e: impl std::fmt::Display) -> PretrainError {
    PretrainError::Tokenizer(e.to_string())
}

/// Trains a CLIP tokenizer on `corpus` (captions, descriptions, names); see the module doc.
pub fn build_tokenizer<S: AsRef<str>>(corpus: &[S]) -> Result<Tokenizer, PretrainError> {
    let merges = learn_merges(corpus)?;
    let vocab = clip_vocab(&merges);
    let sot = vocab.len() as u32;
    let eot = sot + 1;
    let mut vocab: Vocab = vocab.into_iter().zip(0u32..).collect();
    vocab.insert(SOT.to_string(), sot);
    vocab.insert(EOT.to_string(), eot);
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .unk_token(EOT.to_string())
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix(END_OF_WORD.to_string())
        .build()
        .map_err(tok_err)?;
    let mut tokenizer = clip_pipeline(bpe)?;
    tokenizer.with_post_processor(Some(
        RobertaProcessing::new((EOT.to_string(), eot), (SOT.to_string(), sot))
            .trim_offsets(false)
            .add_prefix_space(false),
    ));
    tokenizer
        .add_special_tokens([AddedToken::from(SOT, true), AddedToken::from(EOT, true)])
        .map_err(tok_err)?;
    Ok(tokenizer)
}

/// A tokenizer with CLIP's normalizer, pre-tokenizer and decoder around `model`.
fn clip_pipeline(model: BPE) -> Result<Tokenizer, PretrainError> {
    let mut tokenizer = Tokenizer::new(model);
    let normalizer = Sequence::new(vec![
        NormalizerWrapper::NFC(NFC),
        NormalizerWrapper::Replace(
            Replace::new(
                tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".into()),
                " ",
            )
            .map_err(tok_err)?,
        ),
        NormalizerWrapper::Lowercase(Lowercase),
    ]);
    tokenizer
        .with_normalizer(Some(normalizer))
        .map_err(tok_err)?;
    let split = Split::new(
        SplitPattern::Regex(CLIP_SPLIT.into()),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .map_err(tok_err)?;
    tokenizer.with_pre_tokenizer(Some(PreSequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}

/// The corpus's words as the model sees them (normalised, split, byte-level), with counts.
fn word_counts<S: AsRef<str>>(corpus: &[S]) -> Result<BTreeMap<String, u64>, PretrainError> {
    let pipeline = clip_pipeline(BPE::default())?;
    let mut counts = BTreeMap::new();
    for text in corpus {
        let mut normalized = NormalizedString::from(text.as_ref());
        if let Some(n) = pipeline.get_normalizer() {
            n.normalize(&mut normalized).map_err(tok_err)?;
        }
        let mut words = PreTokenizedString::from(normalized);
        if let Some(p) = pipeline.get_pre_tokenizer() {
            p.pre_tokenize(&mut words).map_err(tok_err)?;
        }
        for (word, _, _) in words.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// A word as BPE starts it: one symbol per character, the last one carrying `</w>`.
fn symbols(word: &str) -> Vec<String> {
    let mut s: Vec<String> = word.chars().map(String::from).collect();
    if let Some(last) = s.last_mut() {
        last.push_str(END_OF_WORD);
    }
    s
}

/// Replaces every occurrence of `pair` in `word`, left to right, by the merged symbol.
fn apply_merge(word: &mut Vec<String>, pair: &(String, String)) {
    let mut i = 0;
    while i + 1 < word.len() {
        if word[i] == pair.0 && word[i + 1] == pair.1 {
            let right = word.remove(i + 1);
            word[i].push_str(&right);
        }
        i += 1;
    }
}

/// Learns BPE merges (Sennrich et al. 2016) until every word is one symbol: each round merges
/// the most frequent adjacent pair, ties going to the smallest pair in string order, so the
/// result depends on the corpus only.
fn learn_merges<S: AsRef<str>>(corpus: &[S]) -> Result<Vec<(String, String)>, PretrainError> {
    let mut words: Vec<(Vec<String>, u64)> = word_counts(corpus)?
        .iter()
        .map(|(w, &c)| (symbols(w), c))
        .collect();
    let mut merges = Vec::new();
    loop {
        let mut pairs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (word, count) in &words {
            for w in word.windows(2) {
                *pairs.entry((w[0].as_str(), w[1].as_str())).or_insert(0) += count;
            }
        }
        // `max_by_key` keeps the last maximum; iterate in reverse order to keep the first.
        let Some((&(a, b), _)) = pairs.iter().rev().max_by_key(|(_, &c)| c) else {
            break;
        };
        let pair = (a.to_string(), b.to_string());
        for (word, _) in &mut words {
            apply_merge(word, &pair);
        }
        merges.push(pair);
    }
    Ok(merges)
}

/// CLIP's vocabulary layout: byte symbols, byte symbols with `</w>`, then each merge result.
fn clip_vocab(merges: &[(String, String)]) -> Vec<String> {
    let bytes: BTreeSet<char> = ByteLevel::alphabet().into_iter().collect();
    let mut vocab: Vec<String> = bytes.iter().map(|c| c.to_string()).collect();
    vocab.extend(bytes.iter().map(|c| format!("{c}{END_OF_WORD}")));
    let mut seen: HashSet<String> = vocab.iter().cloned().collect();
    for (a, b) in merges {
        let merged = format!("{a}{b}");
        if seen.insert(merged.clone()) {
            vocab.push(merged);
        }
    }
    vocab
}

/// The words of `corpus` (after CLIP's normalisation and split) that do not encode to exactly
/// one token; empty when the tokenizer covers the corpus.
pub fn multi_token_words<S: AsRef<str>>(
    tokenizer: &Tokenizer,
    corpus: &[S],
) -> Result<Vec<String>, PretrainError> {
    let mut words = BTreeSet::new();
    for text in corpus {
        let enc = tokenizer.encode(text.as_ref(), false).map_err(tok_err)?;
        for (i, word) in enc.get_word_ids().iter().enumerate() {
            let same = enc.get_word_ids().iter().filter(|w| **w == *word).count();
            if same > 1 {
                let (start, end) = enc.get_offsets()[i];
                words.insert(text.as_ref().get(start..end).unwrap_or("?").to_string());
            }
        }
    }
    Ok(words.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        vec![
            "a bird with a red hooked beak, long tail.".into(),
            "a small blue bird at night.".into(),
            "an empty frame.".into(),
            "northern cardinal".into(),
        ]
    }

    #[test]
    fn every_corpus_word_is_one_token_and_specials_wrap() {
        let tok = build_tokenizer(&corpus()).unwrap();
        assert!(multi_token_words(&tok, &corpus()).unwrap().is_empty());
        let ids = tok.encode("A  Bird, hooked.", true).unwrap();
        let tokens = ids.get_tokens();
        assert_eq!(
            tokens,
            [
                SOT,
                "a</w>",
                "bird</w>",
                ",</w>",
                "hooked</w>",
                ".</w>",
                EOT
            ]
        );
        let vocab = tok.get_vocab_size(true) as u32;
        assert_eq!(tok.token_to_id(EOT), Some(vocab - 1));
        assert_eq!(tok.token_to_id(SOT), Some(vocab - 2));
    }

    #[test]
    fn placeholder_and_unseen_words_encode() {
        let tok = build_tokenizer(&corpus()).unwrap();
        let x = tok.encode(PLACEHOLDER, false).unwrap();
        assert_eq!(x.get_tokens(), ["x</w>"]);
        // An unseen word falls back to byte symbols, never to the unknown token.
        let q = tok.encode("quetzal", false).unwrap();
        assert!(q.len() > 1);
        assert!(!q.get_tokens().iter().any(|t| t == EOT));
    }

    #[test]
    fn same_corpus_same_tokenizer() {
        let a = build_tokenizer(&corpus())
            .unwrap()
            .to_string(false)
            .unwrap();
        let b = build_tokenizer(&corpus())
            .unwrap()
            .to_string(false)
            .unwrap();
        assert_eq!(a, b);
    }
}
