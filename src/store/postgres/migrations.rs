//! The PostgreSQL migrations, as sqlx runs them, with the checksums the
//! releases that shipped them recorded.
//!
//! sqlx records each applied migration's SHA-384 and refuses to start on a
//! database whose record differs from the file's, so a shipped migration's
//! bytes could never change, not even a comment. Where only a comment of a
//! shipped migration was reworded, [`SHIPPED`] keeps the checksum the
//! database holds: an existing database starts as before, and a new one
//! records the same value, so every database agrees.

use sqlx::migrate::Migrator;

/// `(version, SHA-384 of the file as first shipped)` for the migrations whose
/// comments were reworded since. Only comments: the statements are the ones
/// every database ran.
const SHIPPED: [(i64, &str); 3] = [
    (1, "d767972e70e9d403a236b3cac384d56f753a06e9a5c77d21e74c000f3d5360dc613df1fa3a35898fd06a5795d60b40cc"),
    (2, "ec51916d6224720df186b8f9858933e32330b808f6a42593542737ad896f3fe779c427b4a229a4e83467cb6eeed99570"),
    (4, "5a4bea26f468097769f7c60d1b3f551c2c19ae5dcfc135332bc43dc7d33c5b5f4d46665973bc7dd9b94ba3c1cb2a7764"),
];

/// The migrations of `migrations/postgres`, each carrying the checksum its
/// shipped release recorded.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    for migration in migrator.migrations.to_mut() {
        if let Some((_, hex)) = SHIPPED.iter().find(|(version, _)| *version == migration.version) {
            migration.checksum = from_hex(hex).into();
        }
    }
    migrator
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("SHIPPED holds hex digits"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pinned_migration_exists_and_keeps_its_shipped_checksum() {
        let migrator = migrator();
        for (version, hex) in SHIPPED {
            let migration = migrator.iter().find(|m| m.version == version).expect("a pinned migration exists");
            assert_eq!(migration.checksum.len(), 48, "a SHA-384");
            assert_eq!(*migration.checksum, from_hex(hex)[..], "migration {version}");
        }
    }

    #[test]
    fn hex_reads_both_cases() {
        assert_eq!(from_hex("00ff10Ab"), [0x00, 0xff, 0x10, 0xab]);
    }
}
