"""A small built-in English corpus for training the fixtures' sentencepiece model.

Deterministic: fixed sentences and a fixed template expansion, no randomness.
"""

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")

TEXT = """
USER: Can you segment the red circle in this image? ASSISTANT: Sure, it is [SEG].
USER: Please segment the blue square in this image. ASSISTANT: Sure, the segmentation result is [SEG].
USER: What is the green triangle in this image? Please respond with segmentation mask. ASSISTANT: It is [SEG].
USER: What is the object on the left? Please output segmentation mask and explain why.
The quick brown fox jumps over the lazy dog while the cat sleeps near the warm window.
A small boat floats on the quiet lake under a bright morning sky with a few white clouds.
There are three apples, two oranges and one banana on the wooden kitchen table.
The children played football in the park until the sun went down behind the hills.
She opened the old book and found a letter that her grandmother wrote many years ago.
In the middle of the city there is a tall building with glass walls and a green roof.
The train leaves the station at seven o'clock and arrives in the next town at nine.
He painted the fence white, then cleaned the brushes and put them back in the garage.
Birds sing in the trees, and a light wind moves the long grass of the field.
The doctor asked the patient how he felt and wrote a short note on the paper.
Every morning the baker makes fresh bread, sweet cakes and small cookies for the shop.
The road turns left after the bridge and climbs slowly towards the mountain village.
Our team finished the project on time because everyone helped and worked together.
The museum shows paintings, statues and ancient tools from many different countries.
Please close the door, turn off the light and keep the room quiet for the baby.
The weather will be cold and rainy tomorrow, so take a coat and an umbrella.
A person is riding a bicycle along the river, and a dog is running beside them.
The picture shows a kitchen with a white fridge, a black oven and a round table.
On the desk there is a laptop, a cup of coffee, a phone and a pile of papers.
Two people are walking on the beach while the waves break on the sand.
The car parked in front of the house is yellow and has a broken mirror.
Which part of the image shows the sky, and which part shows the water?
Explain why the shadow of the tree is longer in the evening than at noon.
The answer depends on the size, the colour and the position of each object.
Segmentation means finding every pixel that belongs to the object in the picture.
The model looks at the image, reads the question and writes a helpful answer.
Numbers like 12, 345 and 2024 are split into single digits by the tokenizer.
"""

COLOURS = ['red', 'blue', 'green', 'yellow', 'black', 'white', 'orange', 'purple', 'brown', 'grey']
OBJECTS = ['circle', 'square', 'triangle', 'person', 'dog', 'cat', 'car', 'tree', 'house', 'chair',
           'table', 'bottle', 'bird', 'horse', 'boat', 'cup', 'lamp', 'window', 'flower', 'shape']
PLACES = ['on the left', 'on the right', 'in the middle', 'at the top', 'at the bottom', 'near the corner']
QUESTIONS = [
    'Can you segment the {c} {o} in this image?',
    'Please segment the {c} {o} {p}.',
    'What is the {c} {o} {p}? Please respond with segmentation mask.',
    'Where is the {c} {o}? Please output segmentation mask.',
]
ANSWERS = ['It is [SEG].', 'Sure, [SEG].', 'Sure, it is [SEG].', 'Sure, the segmentation result is [SEG].',
           'The {c} {o} is {p} of the picture.', 'I can see a {c} {o} {p}.']


def corpus():
    lines = [SYSTEM] + [line for line in TEXT.strip().split('\n') if line]
    n = 0
    for ci, c in enumerate(COLOURS):
        for oi, o in enumerate(OBJECTS):
            p = PLACES[(ci + oi) % len(PLACES)]
            q = QUESTIONS[n % len(QUESTIONS)].format(c=c, o=o, p=p)
            a = ANSWERS[n % len(ANSWERS)].format(c=c, o=o, p=p)
            lines.append(f'USER: {q} ASSISTANT: {a}')
            n += 1
    return lines
