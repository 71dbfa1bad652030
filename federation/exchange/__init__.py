"""Trading our tokens for cloud credentials: AWS, GCP and Azure."""
