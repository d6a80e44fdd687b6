"""Scanners at the gate: OCR document readers (MRZ lines) and QR/barcode scanners, over serial lines."""
