"""mixbridge.export"""
