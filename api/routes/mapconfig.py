"""Placeholder: filled in by the web map work."""

from fastapi import APIRouter

router = APIRouter()
