"""Placeholder: filled in by the reports work."""

from fastapi import APIRouter

router = APIRouter()
