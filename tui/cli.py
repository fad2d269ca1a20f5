def main():
    print("segtriage")
