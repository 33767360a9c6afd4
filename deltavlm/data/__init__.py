"""ChangeChat data: the builder (rules → records), open-QA generation, record I/O and the training dataset."""

from deltavlm.data.builder import BuilderConfig, BuildReport, build_changechat
from deltavlm.data.records import CaptionTestRecord, ChangeChatRecord, Turn, read_records, write_records
from deltavlm.data.source import DatasetNotFoundError, SourceDataset, SourcePair, read_source

__all__ = [
    "BuildReport",
    "BuilderConfig",
    "CaptionTestRecord",
    "ChangeChatRecord",
    "DatasetNotFoundError",
    "SourceDataset",
    "SourcePair",
    "Turn",
    "build_changechat",
    "read_records",
    "read_source",
    "write_records",
]
