"""Builders of the verify corpus (issue 12): hostile files proven to run code under a real
loader, zip variants for the differential test, and benign checkpoints written by the real
libraries. Nothing binary is committed: every file is written into a tmp dir by a test.
"""
