"""MCL-MCF: unimodal encoders, multi-level contrastive learning (MCL), TCF and the MCF fusion head.

Shapes use B = batch, Dt = text hidden size (768 for BERT-base), Da/Dv = acoustic/visual feature
sizes, D = config.tcf_dim (512 in the paper). Names follow the paper: h_t, h_a, h_v are the
unimodal vectors; h'_m their 512-d expansions; "ta", "tv", "av" the pairwise TCF images. Operand
orders (which side of each outer product and of each InfoNCE call) are the authors' code's
(GitHub Zhudogsi/MCL-MCF, src/model.py), because the InfoNCE is not symmetric in its operands.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from mclmcf.model.config import AUTHORS_TEMPERATURE, MCLMCFConfig
from mclmcf.model.hub import HubCheckpoint
from mclmcf.model.lora import add_lora
from mclmcf.model.losses import InfoNCE, LogitScale
from mclmcf.model.tcf_backbones import StackedImageTCF
from mclmcf.model.text_encoder import build_text_encoder

# TCF image -> (rows, columns) of its outer product: t x a, t x v, and v x a (the authors' tfn_visual_acoustic)
TCF_OPERANDS = {"ta": ("t", "a"), "tv": ("t", "v"), "av": ("v", "a")}
PAIRS = tuple(TCF_OPERANDS)
# level-2 fusions h^s: name -> concatenation order (authors: [t, v], [v, a], [t, a], [t, v, a])
LEVEL2_FUSIONS = {"va": "va", "ta": "ta", "tv": "tv", "tav": "tva"}
# InfoNCE calls (x, y), x and y as the authors pass them to Clip(x, y)
LEVEL1_PAIRS = (("t", "a"), ("t", "v"), ("v", "a"))
LEVEL2_PAIRS = (("t", "va"), ("v", "ta"), ("a", "tv"), ("a", "tav"))
LEVEL3_PAIRS = (("tv", "ta"), ("tv", "av"), ("ta", "av"))
# Table 9's stacked-image backbones give one embedding: level 3 contrasts it with each expansion h'_m
STACKED_LEVEL3_PAIRS = (("tcf", "t"), ("tcf", "a"), ("tcf", "v"))


@dataclass
class MCLMCFOutput:
    score: torch.Tensor                          # (B,) predicted sentiment intensity
    loss: torch.Tensor | None = None             # L1 + alpha*L_f + beta*L_s + gamma*L_t
    loss_reg: torch.Tensor | None = None
    loss_f: torch.Tensor | None = None           # level 1, None when switched off
    loss_s: torch.Tensor | None = None           # level 2
    loss_t: torch.Tensor | None = None           # level 3
    # return_maps=True: TCF images {pair: (B, D, D)} and conv outputs {pair: [(B, C, H, W), ...]}
    tcf_images: dict[str, torch.Tensor] = field(default_factory=dict)
    tcf_feature_maps: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class Conv1x1(nn.Conv1d):
    """The paper's Conv1D on a feature vector: kernel 1 over a length-1 sequence, (B, C_in) -> (B, C_out)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.unsqueeze(-1)).squeeze(-1)


class FeatureStandardizer(nn.Module):
    """Per-feature (x - mean) / std with statistics from the training split, stored in the checkpoint."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SequenceEncoder(nn.Module):
    """Unidirectional 1-layer LSTM; the output at each sequence's last valid step -> Linear.

    Equal to running it over packed sequences (a forward LSTM's step t never sees steps after t),
    but it runs the padded batch and gathers: ~10x faster on CPU, where packed LSTMs are unrolled.
    No dropout: the authors' RNNEncoder sets it to 0 for one layer.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=1, batch_first=True)
        self.linear = nn.Linear(hidden, out_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # x: (B, L, Din); lengths: (B,). A zero length (e.g. no face seen) reads the first step.
        last = lengths.detach().to(x.device, torch.int64).clamp(1, x.shape[1]) - 1
        # fp32 even under autocast: the LSTM is tiny, and oneDNN has no bf16 LSTM on CPUs without
        # bf16 instructions ("could not create a primitive descriptor", seen on an AVX2-only EPYC)
        with torch.autocast(x.device.type, enabled=False):
            outputs, _ = self.lstm(x.float())                      # (B, L, hidden)
        h_last = outputs[torch.arange(x.shape[0], device=x.device), last]   # (B, hidden)
        return self.linear(h_last)


class Expansion(nn.Sequential):
    """Conv1x1 then the fusion activation: h'_m (eq. 20, shared with TCF eq. 13) and h' (eq. 19).
    The authors' get_resNet* blocks are Conv1d + ReLU; without it MCF is one affine map."""

    def __init__(self, in_dim: int, out_dim: int, activation: str):
        super().__init__(Conv1x1(in_dim, out_dim), *([nn.ReLU()] if activation == "relu" else []))


class RegressionHead(nn.Sequential):
    """The authors' SubNet: dropout -> Linear -> tanh -> Linear -> tanh -> Linear(., 1)."""

    def __init__(self, in_dim: int, hidden: int, dropout: float):
        super().__init__(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden),
                         nn.Tanh(), nn.Linear(hidden, 1))


class TCFStack(nn.Module):
    """One TCF branch: the outer product of two D-d vectors is a (B, 1, D, D) "image"; 3x3 convs + ReLU.

    Two rewrites that change no value: average-pooling an outer product equals the outer product of
    the pooled vectors, so the D x D image is only built when asked for (keep_maps); and on CPU the
    convs run channels_last (NHWC), about 4x faster there than NCHW for these few channels.
    """

    def __init__(self, channels: tuple, pool: int):
        super().__init__()
        self.pool = pool
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, kernel_size=3, stride=1) for c_in, c_out in channels)

    def forward(self, u: torch.Tensor, v: torch.Tensor, keep_maps: bool = False):
        image = torch.einsum("bi,bj->bij", u, v) if keep_maps else None       # (B, D, D)
        if self.pool > 1:
            u, v = (F.avg_pool1d(w.unsqueeze(1), self.pool).squeeze(1) for w in (u, v))
            x = torch.einsum("bi,bj->bij", u, v).unsqueeze(1)                 # (B, 1, D/pool, D/pool)
        else:
            x = (image if keep_maps else torch.einsum("bi,bj->bij", u, v)).unsqueeze(1)
        x, maps = self.convolve(x, keep_maps)
        return x, image, maps                               # x: (B, 1, H', W'); image None unless keep_maps

    def convolve(self, x: torch.Tensor, keep_maps: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The 3x3 conv + ReLU layers (each shrinks H, W by 2); their outputs too when keep_maps."""
        layout = torch.channels_last if x.device.type == "cpu" else torch.contiguous_format
        maps = []
        for conv in self.convs:
            x = F.relu(F.conv2d(x, conv.weight.contiguous(memory_format=layout), conv.bias))
            if keep_maps:
                maps.append(x.contiguous())
        return x, maps


class MCLMCF(nn.Module, HubCheckpoint):
    """The network; saving and loading (save_pretrained, from_pretrained, for_inference) come from hub.py."""

    def __init__(self, config: MCLMCFConfig):
        super().__init__()
        if isinstance(config, dict):
            config = MCLMCFConfig.from_dict(config)
        self.config = config
        c = config
        # unimodal encoders (eq. 1-2)
        self.text_encoder = build_text_encoder(c)          # fills c.text_encoder_config on first build
        self._takes_token_types = "token_type_ids" in inspect.signature(self.text_encoder.forward).parameters   # not MPNet
        dt = self.text_encoder.config.hidden_size
        self.audio_norm = FeatureStandardizer(c.audio_dim)
        self.vision_norm = FeatureStandardizer(c.visual_dim)
        self.audio_encoder = SequenceEncoder(c.audio_dim, c.lstm_hidden, c.unimodal_dim)
        self.vision_encoder = SequenceEncoder(c.visual_dim, c.lstm_hidden, c.unimodal_dim)
        dims = {"t": dt, "a": c.unimodal_dim, "v": c.unimodal_dim}

        # the 512-d expansions h'_m (eq. 13 / 20), shared by TCF and MCF
        if c.fusion == "mcf" or c.use_mcl_t:
            self.expand = nn.ModuleDict({m: Expansion(d, c.tcf_dim, c.fusion_activation) for m, d in dims.items()})
        if c.use_mcl_t and c.tcf_stacked:
            self.tcf = StackedImageTCF(c.tcf_backbone)
        elif c.use_mcl_t:
            self.tcf = nn.ModuleDict({p: TCFStack(c.tcf_channels, c.tcf_pool if c.tcf_backbone == "pooled_conv3" else 1)
                                      for p in PAIRS})

        if c.with_contrastive_heads:
            self._build_contrastive_heads(dims)

        # fusion (eq. 19-21) and the regression head
        if c.fusion == "mcf":
            self.fuse_shallow = Expansion(sum(dims.values()), c.fusion_dim, c.fusion_activation)   # h'
            self.fuse_deep = Conv1x1(3 * c.tcf_dim + c.fusion_dim, c.fusion_dim)  # h: no activation (authors' conv_res)
        else:  # w/o MCF: one linear layer over the concatenated unimodal vectors
            self.fuse_linear = nn.Linear(sum(dims.values()), c.fusion_dim)
        self.head = RegressionHead(c.fusion_dim, c.head_hidden, c.dropout)
        self._init_weights()
        if c.freeze_text_encoder:
            self.text_encoder.requires_grad_(False)
        if c.text_encoder_lora_rank:
            add_lora(self.text_encoder, c.text_encoder_lora_rank)

    def _build_contrastive_heads(self, dims: dict) -> None:
        """The training-only InfoNCE heads of the three MCL levels (for_inference drops them)."""
        c = self.config
        if c.uses_contrastive:
            self.logit_scale = LogitScale(c.infonce_variant, AUTHORS_TEMPERATURE)
        if c.use_mcl_f:    # level 1 (eq. 3-5)
            self.level1 = nn.ModuleDict({x + y: InfoNCE(dims[x], dims[y], c.contrastive_dim, c.infonce_variant)
                                         for x, y in LEVEL1_PAIRS})
        if c.use_mcl_s:    # level 2 (eq. 6-12); no activation after these convs (authors' conv_tv etc.)
            self.level2_fuse = nn.ModuleDict({k: Conv1x1(sum(dims[m] for m in order), c.level2_dim)
                                              for k, order in LEVEL2_FUSIONS.items()})
            self.level2 = nn.ModuleDict({f"{x}_{y}": InfoNCE(dims[x], c.level2_dim, c.contrastive_dim, c.infonce_variant)
                                         for x, y in LEVEL2_PAIRS})
        if c.use_mcl_t and c.tcf_stacked:
            self.level3 = nn.ModuleDict({f"{x}_{y}": InfoNCE(self.tcf.out_dim, c.tcf_dim, c.contrastive_dim,
                                                             c.infonce_variant) for x, y in STACKED_LEVEL3_PAIRS})
        elif c.use_mcl_t:    # level 3 (eq. 13-18)
            d3 = c.level3_side ** 2
            self.level3 = nn.ModuleDict({f"{x}_{y}": InfoNCE(d3, d3, c.contrastive_dim, c.infonce_variant)
                                         for x, y in LEVEL3_PAIRS})

    def _init_weights(self):
        """Xavier-normal for every weight matrix / kernel outside the pretrained text encoder (paper Sec. 5.3);
        biases keep PyTorch's default init, as in the authors' Solver (which re-initialises only p.dim() > 1).
        Table 9's image backbones keep their own init (or MAE's pre-trained weights)."""
        own_init = ("text_encoder.", "tcf.backbone.")
        for name, p in self.named_parameters():
            if not name.startswith(own_init) and p.dim() > 1:
                nn.init.xavier_normal_(p)

    def forward(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, audio: torch.Tensor,
                audio_lengths: torch.Tensor, vision: torch.Tensor, vision_lengths: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                return_maps: bool = False, text_vector: torch.Tensor | None = None,
                sample_weight: torch.Tensor | None = None) -> MCLMCFOutput:
        """``text_vector``: the frozen text encoder's output for these texts, computed once beforehand
        (training with a frozen encoder); the token inputs are then not read. ``sample_weight`` (B,): weights
        of the L1 loss (mean 1 over the training split)."""
        c = self.config
        if text_vector is None:
            text_vector = self.encode_text(attention_mask, input_ids=input_ids, token_type_ids=token_type_ids)
        h = {"t": text_vector,                                                               # (B, Dt)
             **self.encode_audio_visual(audio, audio_lengths, vision, vision_lengths)}       # (B, 64) each

        want_losses = labels is not None
        run_level3 = c.use_mcl_t and (return_maps or (want_losses and hasattr(self, "level3")))
        expanded = self.expansions(h)                                                         # (B, D) each

        out = MCLMCFOutput(score=self.score_from_vectors(h, expanded))
        tcf_out = {}
        if run_level3 and c.tcf_stacked:
            images = [torch.einsum("bi,bj->bij", expanded[m], expanded[n]) for m, n in TCF_OPERANDS.values()]
            tcf_out = {"tcf": self.tcf(images), **{m: expanded[m] for m in "tav"}}
            if return_maps:   # the image network's inner maps are not single-pair pictures: none shown
                out.tcf_images = dict(zip(TCF_OPERANDS, images))
                out.tcf_feature_maps = {pair: [] for pair in TCF_OPERANDS}
        elif run_level3:
            for pair, (m, n) in TCF_OPERANDS.items():
                tcf_out[pair], image, maps = self.tcf[pair](expanded[m], expanded[n], keep_maps=return_maps)
                if return_maps:
                    out.tcf_images[pair], out.tcf_feature_maps[pair] = image, maps
        if want_losses:
            self._add_losses(out, h, tcf_out, labels.to(out.score.dtype).reshape(-1), sample_weight)
        return out

    def train(self, mode: bool = True) -> "MCLMCF":
        """A frozen text encoder stays in eval mode (no dropout): its output is a fixed function of the text,
        or, with low-rank adapters, of the text and the adapters."""
        super().train(mode)
        if self.config.freeze_text_encoder:
            self.text_encoder.eval()
        return self

    def encode_text(self, attention_mask: torch.Tensor, input_ids: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """The text vector h_t (B, Dt): [CLS] or the masked token mean (config.text_pooling), from token ids or
        from word embeddings (word attribution)."""
        return self.pool_text(self.text_token_states(attention_mask, input_ids, token_type_ids, inputs_embeds),
                              attention_mask)

    def text_token_states(self, attention_mask: torch.Tensor, input_ids: torch.Tensor | None = None,
                          token_type_ids: torch.Tensor | None = None,
                          inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """The text encoder's last-layer token states (B, L, Dt)."""
        kwargs = {"token_type_ids": token_type_ids} if self._takes_token_types else {}
        return self.text_encoder(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                 **kwargs).last_hidden_state

    def pool_text(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token states (B, L, Dt) -> h_t (B, Dt): the [CLS] state, or the mean over the attention mask."""
        if self.config.text_pooling == "cls":
            return hidden[:, 0]
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1)

    def encode_audio_visual(self, audio: torch.Tensor, audio_lengths: torch.Tensor, vision: torch.Tensor,
                            vision_lengths: torch.Tensor) -> dict:
        """The acoustic and visual unimodal vectors {"a", "v"} from standardised frame features."""
        return {"a": self.audio_encoder(self.audio_norm(audio), audio_lengths),
                "v": self.vision_encoder(self.vision_norm(vision), vision_lengths)}

    def expansions(self, h: dict) -> dict:
        """The D-dimensional expansions h'_m (eq. 13) that TCF and MCF share; none for w/o MCF."""
        return {m: self.expand[m](h[m]) for m in "tav"} if hasattr(self, "expand") else {}

    def fuse(self, h: dict, expanded: dict) -> torch.Tensor:
        """MCF (eqs. 19-21), or one Linear for w/o MCF: unimodal vectors (+ their expansions) -> the head's input."""
        concat = torch.cat([h["t"], h["a"], h["v"]], dim=-1)                                  # (B, Dt+128)
        if self.config.fusion == "linear":
            return self.fuse_linear(concat)
        shallow = self.fuse_shallow(concat)                                                   # h'  (B, 512)
        return self.fuse_deep(torch.cat([expanded["t"], expanded["v"], expanded["a"], shallow], -1))   # h (B, 512)

    def score_from_vectors(self, h: dict, expanded: dict | None = None) -> torch.Tensor:
        """The score (B,) from the unimodal vectors {"t", "a", "v"}: expansions, fusion and the regression head.
        ``expanded``: their expansions when already computed (the forward shares them with TCF)."""
        return self.head(self.fuse(h, self.expansions(h) if expanded is None else expanded)).squeeze(-1)

    def _add_losses(self, out: MCLMCFOutput, h: dict, tcf_out: dict, labels: torch.Tensor,
                    sample_weight: torch.Tensor | None = None) -> None:
        c = self.config
        if sample_weight is None:
            out.loss_reg = F.l1_loss(out.score, labels)
        else:
            w = sample_weight.to(out.score.dtype)
            out.loss_reg = (w * (out.score - labels).abs()).sum() / w.sum()
        out.loss = out.loss_reg
        if not (c.with_contrastive_heads and c.uses_contrastive):
            return
        scale = self.logit_scale()

        def nce(head: InfoNCE, x, y):
            return head(x, y, scale, labels if c.pair_design != "A" else None, c.pair_design)

        if c.use_mcl_f:
            out.loss_f = sum(nce(self.level1[x + y], h[x], h[y]) for x, y in LEVEL1_PAIRS)
            out.loss = out.loss + c.alpha * out.loss_f
        if c.use_mcl_s:
            fused = {k: self.level2_fuse[k](torch.cat([h[m] for m in order], -1)) for k, order in LEVEL2_FUSIONS.items()}
            out.loss_s = sum(nce(self.level2[f"{x}_{y}"], h[x], fused[y]) for x, y in LEVEL2_PAIRS)
            out.loss = out.loss + c.beta * out.loss_s
        if c.use_mcl_t:
            if c.tcf_stacked:
                emb, pairs = tcf_out, STACKED_LEVEL3_PAIRS
            else:
                emb, pairs = {p: self._level3_embedding(x) for p, x in tcf_out.items()}, LEVEL3_PAIRS
            out.loss_t = sum(nce(self.level3[f"{x}_{y}"], emb[x], emb[y]) for x, y in pairs)
            out.loss = out.loss + c.gamma * out.loss_t

    def _level3_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H', W') conv output -> (B, H'*W') for the level-3 InfoNCE."""
        if self.config.tcf_head == "pool":
            x = F.adaptive_avg_pool2d(x, self.config.level3_side)
        return x.flatten(1)
