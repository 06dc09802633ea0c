"""Provisioning: turn a list of modules into devices that are in a product, grouped and online."""
