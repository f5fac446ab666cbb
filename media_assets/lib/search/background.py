"""What "unrelated" looks like to the text model: everyday texts of a personal library on
every topic, in several languages. The meaning leg measures a query against them and
against a sample of the catalogue together, so that a small catalogue (ten memos, where the
one relevant memo is a tenth of the sample) is calibrated as well as a large one: E5's
similarities sit high for any pair (0.74 unrelated, 0.85 related), and only a query's own
spread tells a match from the crowd.
"""

from __future__ import annotations

import numpy as np

_VECTORS: dict[str, np.ndarray] = {}  # model ref -> the background's vectors

BACKGROUND = (
    # memos and notes
    "Remember to pick up the dry cleaning before six.",
    "The meeting with the accountant is next Tuesday morning.",
    "Call mum back about the birthday present.",
    "I left the spare key with the neighbour downstairs.",
    "Buy batteries, light bulbs and a new phone charger.",
    "The car needs new tyres before winter.",
    "Book a table for four on Saturday evening.",
    "The printer in the office is out of toner again.",
    "Ask the school about the parents' evening.",
    "Pay the internet bill and cancel the old gym membership.",
    "The package should arrive on Wednesday between nine and twelve.",
    "Water the tomatoes and mow the lawn this weekend.",
    "Renew the car insurance before the end of the month.",
    "Dinner at Anna's place, bring a bottle of wine.",
    "The train was delayed by forty minutes this morning.",
    "Notes from the lecture on medieval history.",
    "The recipe needs butter, sugar, flour and three eggs.",
    "My running time today was twenty-eight minutes for five kilometres.",
    "Send the invoice to the client and update the spreadsheet.",
    "The kids have swimming lessons on Thursday afternoon.",
    # captions and descriptions
    "a dog running on the beach at sunset",
    "a plate of pasta with tomato sauce on a wooden table",
    "a group of people standing in front of a building",
    "a red car parked on a city street",
    "snow covered mountains under a blue sky",
    "a child playing with a ball in the garden",
    "a close up of a flower with a bee",
    "an empty office with desks and computers",
    "a bowl of fruit on a kitchen counter",
    "a bridge over a river at night with city lights",
    "a birthday cake with candles",
    "a screenshot of a text document",
    "two people riding bicycles along a path in the park",
    "a living room with a sofa and a television",
    "a boat on a lake surrounded by trees",
    # records and exports
    "order: 1042; product: wireless mouse; status: shipped",
    "name: Jane Smith; city: Manchester; role: customer",
    "title: Quarterly report; author: finance team",
    "station: Central; line: 4; platform: 2",
    "category: groceries; shop: corner market",
    "event: conference; venue: exhibition centre; room: B12",
    "temperature readings from the greenhouse sensor",
    "transactions of the joint bank account",
    # other languages
    "Morgen früh muss ich zum Bäcker und dann zur Post.",
    "Das Treffen mit dem Vermieter ist am Montag.",
    "Wir haben im Urlaub viele Fotos am Strand gemacht.",
    "Bitte die Rechnung bis Freitag bezahlen.",
    "Der Kühlschrank ist leer, wir brauchen Milch und Brot.",
    "Mañana tengo que llevar el coche al taller.",
    "La reunión de vecinos es el jueves por la tarde.",
    "Compramos pan, queso y fruta en el mercado.",
    "N'oublie pas d'appeler le plombier demain matin.",
    "Le concert commence à vingt heures au théâtre.",
    "Nous avons visité le musée avec les enfants.",
    "Domani dobbiamo andare in banca prima di pranzo.",
    "Amanhã vou ao médico às dez horas.",
    "Morgen gaan we met de fiets naar het strand.",
    "Jutro mam spotkanie w biurze o dziewiątej.",
    "Завтра мы поедем на дачу к бабушке.",
    "明天早上我要去超市买东西。",
    "明日は友達と映画を見に行きます。",
    "Yarın sabah erkenden toplantı var.",
    "غدا سنذهب إلى السوق لشراء الخضار.",
    "कल सुबह मुझे दफ्तर जल्दी जाना है।",
)


def background_vectors(embedder) -> np.ndarray:
    """The background's passage vectors for this text model, computed once per process."""
    ref = embedder.model_ref
    if ref not in _VECTORS:
        _VECTORS[ref] = embedder.passage(list(BACKGROUND))
    return _VECTORS[ref]
