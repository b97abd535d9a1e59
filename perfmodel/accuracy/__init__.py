"""Accuracy: observations (published and measured tables), validate and calibrate."""
