"""Models of fashionlab, one module per idea (DESIGN.md principle 1).

``backbones``: feature-map extractors truncated where the papers truncate them (ResNet-18/34/50 after
layer3, VGG16 before pool5, AlexNet after pool5), :class:`SmallCNN` for quick runs on a CPU, and
:class:`GlobalPoolEmbedding`, the simplest embedding network. The paper-specific models (recognition
heads, CSN, ASEN, part-guided search, M3-Net, HLS) live in their own modules beside it.
"""
from .backbones import (
    BACKBONES,
    Backbone,
    GlobalPoolEmbedding,
    SmallCNN,
    backbone,
    output_size,
    pretrained_weights_candidates,
    pretrained_weights_file,
)
from .asen import (
    ASENGlobal,
    ASENOutput,
    ASENPlusPlus,
    ASENPPLoss,
    ASENPPOutput,
    ChannelAttention,
    SpatialAttention,
    SpatialAttentionOutput,
    alignment_loss,
    asenpp_loss,
    attention_box,
    combined_feature,
    cosine_triplet_loss,
    crop_and_resize,
)
from .partsearch import (
    CASES3,
    AttributeClassifierNet,
    PartSearchNet,
    PartSearchOutput,
    attribute_loss,
    batch_triplets,
    signature_triplet_loss,
)
from .csn import ConditionalSimilarityNet, CSNTripletOutput, block_masks
from .recognition import (
    MultiColumnHead,
    RecognitionNet,
    SingleColumnHead,
    multi_column_loss,
    multi_column_loss_annotated,
    pad_columns,
    single_column_labels,
    single_column_loss,
    value_offsets,
)

__all__ = [
    "BACKBONES",
    "Backbone",
    "GlobalPoolEmbedding",
    "SmallCNN",
    "backbone",
    "output_size",
    "pretrained_weights_candidates",
    "pretrained_weights_file",
    "SpatialAttention",
    "SpatialAttentionOutput",
    "ChannelAttention",
    "ASENGlobal",
    "ASENOutput",
    "ASENPlusPlus",
    "ASENPPOutput",
    "ASENPPLoss",
    "attention_box",
    "crop_and_resize",
    "alignment_loss",
    "combined_feature",
    "cosine_triplet_loss",
    "asenpp_loss",
    "ConditionalSimilarityNet",
    "CSNTripletOutput",
    "block_masks",
    "MultiColumnHead",
    "RecognitionNet",
    "SingleColumnHead",
    "multi_column_loss",
    "multi_column_loss_annotated",
    "pad_columns",
    "single_column_labels",
    "single_column_loss",
    "value_offsets",
    "CASES3",
    "AttributeClassifierNet",
    "PartSearchNet",
    "PartSearchOutput",
    "attribute_loss",
    "batch_triplets",
    "signature_triplet_loss",
]
