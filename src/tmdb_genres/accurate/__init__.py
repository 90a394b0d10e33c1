"""The accurate model: sentence embeddings with a per-genre head, ensembled with the SVM.

Its stages (``embed``, ``head``, ``ensemble``) live in ``accurate/dvc.yaml``, a DVC project of
their own inside the repository, so the default ``dvc repro`` never needs the optional extra.
"""
