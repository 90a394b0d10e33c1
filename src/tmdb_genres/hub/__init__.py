"""Publishing the trained model: the folder format, its model card, the Space and the upload."""
