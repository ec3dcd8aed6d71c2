//! Request bodies: arbitrary bytes through the API's JSON parser into the
//! request types of the token and merchant endpoints. Never panics, and an
//! error never echoes a card-number-like run of digits from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::api::extract::parse_json;
use paywarden::api::routes::merchant::UpdateMerchant;
use paywarden::api::routes::tokens::CreateToken;

fn long_digit_runs(input: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(input)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 12)
        .map(str::to_owned)
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let runs = long_digit_runs(data);
    if let Err(e) = parse_json::<CreateToken>(data) {
        let text = format!("{e:?}");
        for run in &runs {
            assert!(!text.contains(run.as_str()), "error echoes input digits");
        }
    }
    if let Err(e) = parse_json::<UpdateMerchant>(data) {
        let text = format!("{e:?}");
        for run in &runs {
            assert!(!text.contains(run.as_str()), "error echoes input digits");
        }
    }
});
