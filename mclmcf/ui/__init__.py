"""The page's HTML and figures: the analysis result, word colours, the expression strip and the live tab."""
