"""mixbridge.plugins"""
