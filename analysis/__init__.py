"""Analysis of trial records (figures 2-5, Table 1): reads results/, never trains or imports torch."""
