"""One module per exercise notebook: `exNN.py` declares QUESTIONS, a list of grading.Question."""
