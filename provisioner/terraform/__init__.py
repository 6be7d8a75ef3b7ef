"""Running Terraform: per-workspace init/plan/apply/destroy, logged, locked."""
