"""The command line: ``python -m labutils {data,report,results,check,bench,bench-predict,predict,standin}``."""
