"""The shared vocabulary: records, settings, consent policy, errors.

This package depends on nothing else of Consentry's; every stage imports it.
"""
