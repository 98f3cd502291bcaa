from profilekit.backbone.loader import Backbone, default_backbone_path, load_backbone

__all__ = ["Backbone", "default_backbone_path", "load_backbone"]
