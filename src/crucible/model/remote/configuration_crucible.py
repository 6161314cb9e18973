"""Configuration of crucible's GPT for Hugging Face transformers (remote code; self-contained).

The field names are the native `GPTConfig`'s; `attribute_map` gives them the standard names that
transformers and vLLM look up (hidden_size, num_attention_heads, ...), and `final_logit_softcapping`
is the name vLLM reads the soft-cap from.
"""

from transformers import PretrainedConfig


class CrucibleConfig(PretrainedConfig):
    model_type = "crucible_gpt"
    keys_to_ignore_at_inference = ["past_key_values"]
    attribute_map = {
        "hidden_size": "n_embd",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
        "num_key_value_heads": "n_kv_head",
        "max_position_embeddings": "seq_len",
        "rope_theta": "rope_base",
        "final_logit_softcapping": "softcap",
    }

    def __init__(self, vocab_size=32768, seq_len=1024, n_layer=12, n_head=6, n_kv_head=3, n_embd=768,
                 mlp_ratio=4, softcap=15.0, tie_embeddings=False, unet_skips=False, value_embeds=False,
                 rope_base=10000.0, bos_token_id=0, eos_token_id=4, **kwargs):
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_kv_head = n_kv_head
        self.n_embd = n_embd
        self.mlp_ratio = mlp_ratio
        self.softcap = softcap
        self.tie_embeddings = tie_embeddings
        self.unet_skips = unet_skips
        self.value_embeds = value_embeds
        self.rope_base = rope_base
        self.head_dim = n_embd // n_head
        self.intermediate_size = mlp_ratio * n_embd
        kwargs["tie_word_embeddings"] = tie_embeddings
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
