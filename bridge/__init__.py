"""mixbridge.bridge"""
