"""Catalogs of base models and GPU hardware."""
