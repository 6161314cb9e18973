"""Pretraining data: a corpus of documents (`corpus`), token shards on disk (`shards`), and the
`prepare` step that turns one into the other (`crucible data prepare`)."""
