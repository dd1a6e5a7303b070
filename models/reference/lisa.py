"""LISA inference as the reference (dvlab-research/LISA chat.py + LISAForCausalLM.evaluate) does it,
in float32 on CPU, one image, any number of turns."""
import torch
import torch.nn.functional as F

from checkpoint_io import load_json, load_state_dict
from clip import ClipVision, ClipVisionConfig, project
from llama import Llama, LlamaConfig
from llama_tokenizer import LlamaTokenizer431
from preprocess import clip_pixel_values, read_image, sam_pixel_values
from sam_decoder import SamMaskDecoder, postprocess_masks
from sam_encoder import SamImageEncoder

IMAGE_TOKEN_INDEX = -200
IMAGE_TOKEN = '<image>'
IMAGE_QUESTION = '<im_start><image><im_end>\n'
TEMPLATES = {
    'llava_v1': "A chat between a curious human and an artificial intelligence assistant. "
                "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    'llava_llama_2': 'You are a helpful language and vision assistant. You are able to understand the visual content '
                     'that the user provides, and assist the user with a variety of tasks using natural language.',
}


def build_prompt(template, turns):
    """turns: [(question, answer or None)]; the image goes into the first question (chat.py)."""
    system = TEMPLATES[template]
    messages = []
    for i, (question, answer) in enumerate(turns):
        messages.append(IMAGE_QUESTION + question if i == 0 else question)
        messages.append(answer)
    if template == 'llava_v1':
        # SeparatorStyle.TWO, sep " ", sep2 "</s>"; an empty message ends the prompt with "ROLE:".
        out = system + ' '
        for i, message in enumerate(messages):
            role = 'USER' if i % 2 == 0 else 'ASSISTANT'
            out += f'{role}: {message}' + (' ' if i % 2 == 0 else '</s>') if message else f'{role}:'
        return out
    # SeparatorStyle.LLAMA_2, sep "<s>", sep2 "</s>", the leading "<s>" stripped.
    out = ''
    for i, message in enumerate(messages):
        if not message:
            continue
        if i == 0:
            message = f'<<SYS>>\n{system}\n<</SYS>>\n\n' + message
        out += f'<s>[INST] {message} [/INST]' if i % 2 == 0 else f' {message} </s>'
    return out[len('<s>'):] if out.startswith('<s>') else out


def tokenizer_image_token(tokenizer, prompt):
    """Split at <image>, tokenise each chunk with BOS, keep the first BOS only, one -200 per image."""
    chunks = [tokenizer.encode(chunk, add_special_tokens=True) for chunk in prompt.split(IMAGE_TOKEN)]
    bos = tokenizer.encode('', add_special_tokens=True)
    offset = 1 if bos and chunks[0] and chunks[0][0] == bos[0] else 0
    ids = [chunks[0][0]] if offset else []
    for i, chunk in enumerate(chunks):
        if i > 0:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(chunk[offset:])
    return ids


class Lisa:
    def __init__(self, config, weights, tokenizer, clip, preprocessor, template='llava_v1'):
        self.config = config
        self.weights = weights
        self.llama = Llama(LlamaConfig(config), weights)
        self.tokenizer = tokenizer
        self.template = template
        self.preprocessor = preprocessor
        self.clip = clip
        self.sam_encoder = SamImageEncoder(weights)
        self.sam_decoder = SamMaskDecoder(weights)
        self.seg_id = self._single_id('[SEG]')
        self.eos_id = self._single_id('</s>')

    @classmethod
    def load(cls, checkpoint_dir, vision_tower_dir, template='llava_v1'):
        clip = ClipVision(ClipVisionConfig(load_json(vision_tower_dir, 'config.json')), load_state_dict(vision_tower_dir))
        return cls(load_json(checkpoint_dir, 'config.json'), load_state_dict(checkpoint_dir),
                   LlamaTokenizer431.from_pretrained(checkpoint_dir), clip,
                   load_json(vision_tower_dir, 'preprocessor_config.json'), template)

    def _single_id(self, text):
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f'{text} is not one token in this tokenizer: {ids}')
        return ids[0]

    @torch.no_grad()
    def image_features(self, image):
        clip_pixels = clip_pixel_values(image, self.preprocessor)
        features = self.clip.select_features(clip_pixels, self.config.get('mm_vision_select_layer', -2))
        return clip_pixels, project(features, self.weights)[None]

    @torch.no_grad()
    def encode_image(self, path):
        image = read_image(path)
        clip_pixels, image_features = self.image_features(image)
        sam_pixels, resized = sam_pixel_values(image)
        return {
            'original_hw': tuple(image.shape[:2]), 'resized_hw': resized,
            'clip_pixel_values': clip_pixels, 'image_features': image_features,
            'sam_pixel_values': sam_pixels, 'sam_image_embeddings': self.sam_encoder(sam_pixels),
        }

    def embed_prompt(self, prompt_ids, image_features):
        pieces, run = [], []
        for i in prompt_ids:
            if i == IMAGE_TOKEN_INDEX:
                if run:
                    pieces.append(self.llama.embed(run))
                pieces.append(image_features[0])
                run = []
            else:
                run.append(i)
        if run:
            pieces.append(self.llama.embed(run))
        return torch.cat(pieces, dim=0)

    @torch.no_grad()
    def generate(self, prompt_ids, image_features, max_new_tokens):
        """Greedy decoding without a KV cache (use_cache=False): a full forward per step."""
        embeds = self.embed_prompt(prompt_ids, image_features)
        prompt_len = embeds.shape[0]
        generated, step_logits, hidden = [], [], None
        for _ in range(max_new_tokens):
            logits, hidden = self.llama.forward(embeds)
            token = int(torch.argmax(logits[-1]))
            generated.append(token)
            step_logits.append(logits[-1])
            if token == self.eos_id:
                break
            embeds = torch.cat([embeds, self.llama.embed([token])], dim=0)
        return generated, torch.stack(step_logits), hidden, prompt_len

    def seg_projection(self, seg_hidden):
        w = self.weights
        x = F.relu(F.linear(seg_hidden, w['model.text_hidden_fcs.0.0.weight'], w['model.text_hidden_fcs.0.0.bias']))
        return F.linear(x, w['model.text_hidden_fcs.0.2.weight'], w['model.text_hidden_fcs.0.2.bias'])

    def answer_text(self, generated, spaces_around_added=False):
        """The answer as the history holds it: sentencepiece runs joined with the added tokens'
        text, no spaces put around them (`spaces_around_added=True` gives 4.31's own decode, which
        chat.py prints). The next turn's ids are the same either way: encoding strips the
        whitespace around [SEG]."""
        ids = generated[:-1] if generated and generated[-1] == self.eos_id else generated
        return self.tokenizer.decode(ids, spaces_between_special_tokens=spaces_around_added)

    @torch.no_grad()
    def run_turn(self, image, history, question, max_new_tokens):
        """history: [(question, answer_text)] of earlier turns. Returns this turn's outputs."""
        prompt = build_prompt(self.template, history + [(question, None)])
        prompt_ids = tokenizer_image_token(self.tokenizer, prompt)
        generated, step_logits, hidden, prompt_len = self.generate(prompt_ids, image['image_features'], max_new_tokens)
        # The [SEG] offset rule: the hidden state of the position before each [SEG], taken (as
        # evaluate() does) from the last forward, which covers every position but the last token.
        positions = [prompt_len + j - 1 for j, t in enumerate(generated) if t == self.seg_id]
        seg_hidden = hidden[positions] if positions else torch.zeros((0, hidden.shape[1]))
        seg_embeddings = self.seg_projection(seg_hidden)
        if positions:
            low_res, iou = self.sam_decoder(image['sam_image_embeddings'], seg_embeddings)
            masks = postprocess_masks(low_res, image['resized_hw'], image['original_hw'])
        else:
            low_res, iou = torch.zeros((0, 1, 256, 256)), torch.zeros((0, 1))
            masks = torch.zeros((0,) + tuple(image['original_hw']), dtype=torch.bool)
        return {
            'prompt': prompt, 'prompt_ids': prompt_ids, 'generated_ids': generated,
            'text': self.answer_text(generated), 'text_431': self.answer_text(generated, True),
            'step_logits': step_logits,
            'seg_hidden': seg_hidden, 'seg_embeddings': seg_embeddings,
            'low_res_masks': low_res, 'iou_predictions': iou, 'masks': masks,
        }

    def conversation(self, image_path, questions, max_new_tokens=512):
        image = self.encode_image(image_path)
        history, turns = [], []
        for question in questions:
            turn = self.run_turn(image, history, question, max_new_tokens)
            turns.append(turn)
            history.append((question, turn['text']))
        return image, turns
