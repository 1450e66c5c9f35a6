"""Provider adapters: one module per vendor family, plus the offline `local` family. No Prefect here."""
