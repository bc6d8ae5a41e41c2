//! Masked display of secret values: enough to recognise a value, nothing more.

/// Masks a secret: the type prefix (at most 5 characters) and the last 3 or 4 characters,
/// e.g. `sk_te***...***4242`. Values under 12 characters are fully starred.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n < 12 {
        return "*".repeat(n.max(1));
    }
    let (prefix, suffix) = if n < 20 { (3, 3) } else { (5, 4) };
    let head: String = chars[..prefix].iter().collect();
    let tail: String = chars[n - suffix..].iter().collect();
    format!("{head}***...***{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_keep_a_prefix_and_a_short_tail() {
        assert_eq!(
            mask("sk_test_51Habcdefghijklmnop4242"),
            "sk_te***...***4242"
        );
        assert_eq!(mask("whsec_abcdef12"), "whs***...***f12");
        assert_eq!(mask("short"), "*****");
        assert_eq!(mask(""), "*");
    }

    #[test]
    fn a_mask_never_reveals_most_of_the_value() {
        for n in 12..80 {
            let value: String = "x".repeat(n);
            let masked = mask(&value);
            let shown = masked.chars().filter(|c| *c == 'x').count();
            assert!(shown * 2 <= n, "{n}: {masked}");
        }
    }
}
